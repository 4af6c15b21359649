"""Run-store safety at the edges (issue 14), with real processes:

- disk full under load: the run store on a 4 MiB tmpfs that a filler file fills up. Bar: no
  acknowledged run lost or stranded, no restart of the workflow service, reads answered all
  along, every accepted run finished within 30 s of the space returning, nobody intervening.
- SIGSTOP one of two workflow replicas sharing one store (SQLite file; PostgreSQL) for 10 s
  under load, repeated. Bar: no write lands from a replica whose lease moved, no step body
  starts under a moved lease, ``executions`` never below the starts the side-effect log saw
  (it may count a start whose body was then withheld: see `audit_fencing`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.chaos.conftest import FULL
from tests.chaos.drill import REPORTS, Drill, DrillReport
from tests.chaos.replicas import FenceReport, Load, ReplicaSet, audit_fencing
from tests.conftest import eventually
from vigil.workflow.v1 import workflow_pb2 as wpb

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

CYCLES = 5 if FULL else 1
STOP_S = 10.0


# --- disk full ---------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (needs root, as the run store's drill volume)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


async def test_disk_full_under_load(small_disk: Path, drill_stack) -> None:
    # small_disk first: fixtures are torn down in reverse, so the stack stops before the umount.
    drill: Drill = await drill_stack(
        "disk full (4 MiB tmpfs filled)",
        delay_s=0.2,
        store_reserve_mb=1.0,
        workflow={
            "store_path": str(small_disk / "runs.db"),
            "store_space": {"reserve_mb": 1.0, "wal_limit_mb": 0.5, "preallocate_mb": 0.5},
            "health_probe_s": 0.5,
        },
    )
    stack = drill.stack
    stack.procs["healthd"].tail = collections.deque(stack.procs["healthd"].tail, maxlen=2000)
    pid = await stack.pid("workflow")
    drill.watch("workflow-store")  # detect / heal: healthd's store check below / above the reserve
    drill.start_load()
    await asyncio.sleep(2.0)
    reads = Counter[str]()
    sample = drill.accepted[0]

    async def read_all_along(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await drill._stub.GetRun(
                    wpb.GetRunRequest(run_id=sample), metadata=drill._metadata, timeout=2
                )
                reads["OK"] += 1
            except grpc.aio.AioRpcError as exc:
                reads[exc.code().name] += 1
            await asyncio.sleep(0.1)

    stop_reads = asyncio.Event()
    reader = asyncio.ensure_future(read_all_along(stop_reads))
    drill.mark_fault()
    filler = await asyncio.to_thread(_fill, small_disk)
    await asyncio.sleep(6.0)
    accepted_at_return = len(drill.accepted)
    filler.unlink()
    returned = time.monotonic()
    await asyncio.sleep(2.0)
    await drill.stop_load()
    # Every run accepted so far ends within 30 s of the space returning, by itself.
    pending = set(drill.accepted)

    async def all_ended() -> bool:
        for run_id in list(pending):
            run = (
                await drill._stub.GetRun(
                    wpb.GetRunRequest(run_id=run_id), metadata=drill._metadata, timeout=5
                )
            ).run
            if run.state in (wpb.RUN_STATE_SUCCEEDED, wpb.RUN_STATE_FAILED, wpb.RUN_STATE_TIMED_OUT):
                pending.discard(run_id)
        return not pending

    try:
        await eventually(all_ended, timeout=30, interval=0.5)
    except AssertionError:
        states = Counter[str]()
        for run_id in pending:
            got = await drill._stub.GetRun(
                wpb.GetRunRequest(run_id=run_id), metadata=drill._metadata, timeout=5
            )
            states[wpb.RunState.Name(got.run.state)] += 1
        raise AssertionError(
            f"{len(pending)} accepted runs unfinished 30 s after space returned: {dict(states)}\n"
            + stack.log_tail()[-4000:]
        ) from None
    recovered_s = time.monotonic() - returned
    stop_reads.set()
    await reader
    restarted = await stack.pid("workflow") != pid
    await drill.finish()
    r = drill.report
    r.note = (
        f"{accepted_at_return} accepted before space returned; all {r.accepted} ended"
        f" {recovered_s:.1f} s after; "
        f"reads during the fault {dict(reads)}; workflow restarted: {restarted}"
    )
    assert r.lost == 0 and r.unrecorded_steps == 0 and r.accepted > 0, r
    assert not restarted, f"the workflow service was restarted for a full disk:\n{stack.log_tail()[-20000:]}"
    assert set(reads) == {"OK"}, reads
    assert not {"UNKNOWN", "INTERNAL"} & set(r.failed), r
    assert r.detect_s is not None and r.heal_s is not None, r  # the store check saw it, then recovery
    assert sum(r.failed.values()) > 0, r  # new runs were refused while the disk was full


# --- SIGSTOP one of two replicas -----------------------------------------------------------
async def _sigstop_drill(replicas: ReplicaSet, name: str) -> tuple[DrillReport, FenceReport]:
    await replicas.start()
    load = Load(replicas)
    try:
        load.start()
        await asyncio.sleep(2.0)
        victim = replicas.procs[replicas.names[0]]
        for _ in range(CYCLES):
            victim.signal(signal.SIGSTOP)
            await asyncio.sleep(STOP_S)
            victim.signal(signal.SIGCONT)
            await asyncio.sleep(3.0)
        await load.stop()
        runs, pending = await load.final_runs(60)
    finally:
        await load.close()
    fence = audit_fencing(replicas.starts, runs)
    states = Counter(run.state for run in runs.values())
    report = DrillReport(
        name,
        sent=load.sent,
        accepted=len(set(load.accepted)),
        succeeded=states.pop(wpb.RUN_STATE_SUCCEEDED, 0),
        failed=load.refused + Counter({f"run:{wpb.RunState.Name(s)}": n for s, n in states.items()}),
        lost=len(pending),
        duplicated_steps=fence.takeovers,
        note=f"{CYCLES}x {STOP_S:g} s SIGSTOP of {replicas.names[0]}: {fence.line()}",
    )
    REPORTS.append(report)
    return report, fence


def _assert_fenced(report: DrillReport, fence: FenceReport, replicas: ReplicaSet) -> None:
    assert report.lost == 0 and report.accepted > 0, report
    assert not {"UNKNOWN", "INTERNAL"} & set(report.failed), report
    assert fence.takeovers > 0, f"no run was taken over: the drill proved nothing ({fence.line()})"
    assert (fence.stale_starts, fence.stale_writes, fence.executions_mismatch) == (0, 0, 0), fence.details[
        :20
    ]


@pytest.fixture
def replica_sets() -> Iterator[list[ReplicaSet]]:
    made: list[ReplicaSet] = []
    yield made
    for replicas in made:
        for proc in replicas.procs.values():  # a stopped process cannot handle SIGTERM
            with contextlib.suppress(ProcessLookupError, AssertionError):
                os.kill(proc.pid, signal.SIGCONT)
        replicas.stop()


async def test_sigstop_one_of_two_sqlite_replicas(tmp_path: Path, replica_sets: list[ReplicaSet]) -> None:
    replicas = ReplicaSet(tmp_path / "sqlite")
    replica_sets.append(replicas)
    report, fence = await _sigstop_drill(replicas, f"SIGSTOP 1 of 2 SQLite replicas x{CYCLES}")
    _assert_fenced(report, fence, replicas)


async def test_sigstop_one_of_two_postgres_replicas(
    tmp_path: Path, postgres_dsn: str, replica_sets: list[ReplicaSet]
) -> None:
    replicas = ReplicaSet(tmp_path / "pg", postgres_dsn=postgres_dsn)
    replica_sets.append(replicas)
    report, fence = await _sigstop_drill(replicas, f"SIGSTOP 1 of 2 PostgreSQL replicas x{CYCLES}")
    _assert_fenced(report, fence, replicas)
