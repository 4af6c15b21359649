"""Drills measured at the caller (issue 12): steady StartRun load from a separate client
process (`tests.chaos.loadgen`), a fault, then the figures a caller saw (`tests.chaos.figures`):
failed calls, time from the fault to the first good StartRun, calls refused while readiness
said SERVING, runs lost or created twice. Real processes (healthd supervising both services)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench import SECURITY, WORKFLOW, python_env
from bench._stack import SERVING, health_status
from services.common import Unavailable
from services.workflow.client import StartRetry, WorkflowClient, pb
from tests.chaos.drill import Drill
from tests.chaos.figures import CallerFigures, figures, read_events
from tests.chaos.test_drills import _new_pid, assert_sound, set_maintenance
from tests.conftest import eventually

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]
if sys.platform != "linux":
    pytestmark.append(pytest.mark.skip(reason="Linux only"))

REPO = Path(__file__).resolve().parents[2]


class LoadProcess:
    """`tests.chaos.loadgen` in its own process against ``drill``'s stack (bounded)."""

    def __init__(self, drill: Drill, out: Path, **options: Any) -> None:
        self.out, self.stop_file = out, out.with_suffix(".stop")
        opts = {"max-s": 60, "max-calls": 4000, **options}
        args = [
            sys.executable,
            "-m",
            "tests.chaos.loadgen",
            "--address",
            drill.stack.address("workflow"),
            "--token",
            drill.stack.token,
            "--healthd",
            drill.stack.address("healthd"),
            "--out",
            str(out),
            "--stop-file",
            str(self.stop_file),
        ]
        for key, value in opts.items():
            args += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
        self.proc = subprocess.Popen(args, cwd=REPO, env=python_env(), stderr=subprocess.PIPE, text=True)

    async def steady(self, good: int = 20, within_s: float = 60.0) -> None:
        """Wait until the load runs (``good`` calls answered OK): its start-up is not the drill's."""

        def running() -> bool:
            assert self.proc.poll() is None, "the load process ended early"
            return sum(1 for e in read_events(self.out) if e.get("ok")) >= good

        await eventually(running, timeout=within_s, interval=0.2)

    async def stop(self, *, early: bool = True) -> list[dict[str, Any]]:
        """The events, once the process ended (``early``: asked to stop now, else at its bounds)."""
        if early:
            self.stop_file.touch()
        try:
            _, err = await asyncio.to_thread(self.proc.communicate, timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        assert self.proc.returncode == 0, err[-3000:]
        return read_events(self.out)


async def runs_per_call(drill: Drill, token: str) -> Counter[str]:
    """How many runs the store holds per logical call (label ``call``) of ``token``'s caller."""
    per_call: Counter[str] = Counter()
    async with WorkflowClient(drill.stack.address("workflow"), token=token) as c:
        page_token = ""
        while True:
            runs, page_token = await c.list_runs(page_size=1000, page_token=page_token)
            per_call.update(r.labels["call"] for r in runs if "call" in r.labels)
            if not page_token:
                return per_call


async def _ready(drill: Drill) -> bool:
    return await health_status(drill.stack.address("healthd"), "readiness") == SERVING


def _note(*groups: CallerFigures, extra: str = "") -> str:
    return "; ".join([g.line() for g in groups] + ([extra] if extra else []))


async def test_kill_9_workflow_caller_figures(drill_stack, tmp_path: Path) -> None:
    """1 replica: the first good StartRun comes as soon as the restarted service serves (no
    level hold after a single recovery), and nothing is refused once readiness is SERVING."""
    drill = await drill_stack("caller: kill -9 workflow (1 replica)")
    drill.watch(WORKFLOW)
    load = LoadProcess(drill, tmp_path / "kill.jsonl", raw=2, shipped=2)
    await load.steady()
    pid = await drill.stack.pid("workflow")
    fault_at = time.time()
    drill.mark_fault()
    os.kill(pid, signal.SIGKILL)
    await eventually(lambda: _new_pid(drill, "workflow", pid), timeout=60, interval=0.1)
    await eventually(lambda: _ready(drill), timeout=60, interval=0.1)
    await asyncio.sleep(4.0)  # load continues on the healed service
    events = await load.stop()
    raw, shipped = figures(events, "raw", fault_at), figures(events, "shipped", fault_at)
    drill.accepted = raw.run_ids + shipped.run_ids
    per_call = await runs_per_call(drill, drill.stack.token)
    await drill.finish()
    twice = sum(1 for n in per_call.values() if n > 1)
    drill.report.gap_s, drill.report.duplicated_runs = raw.gap_s, twice  # the table's columns
    drill.report.refused_ready = raw.refused_ready + shipped.refused_ready
    drill.report.note = _note(raw, shipped, extra=f"{twice} calls with two runs")
    assert_sound(drill)
    assert twice == 0
    assert raw.first_ok_s is not None
    # The target is <= 3 s; asserted loosely (a loaded 2-core box), the figure is in the table.
    assert raw.first_ok_s < 10, raw.line()
    assert raw.refused_ready == 0 and shipped.refused_ready == 0, _note(raw, shipped)
    assert shipped.unreached_ready == 0, shipped.line()
    assert not shipped.failed, shipped.line()  # the shipped client retried every refusal
    # Retryable refusals only: UNAVAILABLE while down. The restarted replica does not obey the
    # level its own failure caused (healthd's level_without), so it is not refused by
    # RESTRICTED/OFFLINE while healthd's check of it is still pending; RESOURCE_EXHAUSTED
    # stays allowed for a bulkhead full of the callers' retries.
    assert set(raw.failed) <= {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}, raw.line()


async def test_security_down_reads_survive_and_starts_fail_closed(drill_stack, tmp_path: Path) -> None:
    drill = await drill_stack("caller: security down (reads)")
    ledger = drill.ledger
    async with WorkflowClient(
        drill.stack.address("workflow"), token=drill.stack.token, start_retry=StartRetry(max_attempts=1)
    ) as c:
        known, _ = await c.start_run("chaos.counted", {"delay_s": 0}, wait=True)
        load = LoadProcess(drill, tmp_path / "security.jsonl", raw=2, shipped=0)
        await load.steady()
        await set_maintenance(drill, SECURITY, True)  # healthd must not restart it meanwhile
        pid = await drill.stack.pid("security")
        fault_at = time.time()
        drill.mark_fault()
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(1.0)  # runs accepted before the fault finish their steps
        handled_before = len(ledger.read_text().splitlines()) if ledger.exists() else 0
        window_start = time.time()
        reads, read_failures = 0, []
        refused: Counter[str] = Counter()
        while time.time() - window_start < 4.0:
            try:
                assert (await c.get_run(known.run_id)).state == pb.RUN_STATE_SUCCEEDED
                assert (await c.list_runs(page_size=10))[0]
                reads += 2
            except Exception as exc:  # the figure: every failed read is counted
                read_failures.append(repr(exc))
            try:
                await c.start_run("chaos.counted", {"delay_s": 0})
                refused["accepted"] += 1
            except Unavailable as exc:
                refused["UNAVAILABLE" + (" +RetryInfo" if exc.retry_after_s is not None else "")] += 1
            await asyncio.sleep(0.1)
        window_end = time.time()
        handled_after = len(ledger.read_text().splitlines()) if ledger.exists() else 0
        await set_maintenance(drill, SECURITY, False)
        await eventually(lambda: _new_pid(drill, "security", pid), timeout=60, interval=0.1)
        await asyncio.sleep(1.0)
        events = await load.stop()
    raw = figures(events, "raw", fault_at)
    during = [e for e in events if e.get("group") == "raw" and window_start <= e["t0"] <= window_end]
    codes = Counter("ok" if e["ok"] else e["code"] for e in during)
    drill.accepted = raw.run_ids
    await drill.finish()
    drill.report.gap_s = None  # the outage is the drill's own (maintenance): no gap to report
    drill.report.note = (
        f"while security was down: {reads} reads OK, {len(read_failures)} failed; load process "
        f"StartRun {dict(codes)}; this caller's StartRun {dict(refused)}; handlers run "
        f"{handled_after - handled_before}"
    )
    assert_sound(drill)
    assert read_failures == [] and reads > 0
    assert set(codes) == {"UNAVAILABLE"}, codes
    assert set(refused) == {"UNAVAILABLE +RetryInfo"}, refused
    assert handled_after == handled_before  # no handler ran while security was down


async def test_missing_artifacts_refuse_no_other_callers_runs(drill_stack, tmp_path: Path) -> None:
    """40 artifact.verify runs on a missing file (the admin caller) interleaved with 40 good
    echo runs (the drill caller): the verdicts (NOT_FOUND) open no breaker, so no good run is refused."""
    drill = await drill_stack("caller: 40 missing artifacts + 40 good runs")
    load = LoadProcess(
        drill,
        tmp_path / "breaker.jsonl",
        raw=1,
        shipped=0,
        mix="breaker",
        workflow="echo",
        params={},
        **{"bad-token": drill.stack.admin_token, "max-calls": 80, "pause-s": 0.0},
    )
    events = await load.stop(early=False)
    good = [e for e in events if e.get("kind") == "echo"]
    bad = [e for e in events if e.get("kind") == "artifact.verify"]
    good_ok = [e for e in good if e["ok"] and e["state"] == "RUN_STATE_SUCCEEDED"]
    bad_verdict = [
        e for e in bad if e["ok"] and e["state"] == "RUN_STATE_FAILED" and "no such file" in e["error"]
    ]
    drill.accepted = [e["run_id"] for e in good if e["ok"]]  # the drill caller's own (audited)
    await drill.finish()
    drill.report.note = (
        f"good runs {len(good_ok)}/{len(good)} succeeded ({len(good) - len(good_ok)} refused or failed); "
        f"missing-artifact runs {len(bad_verdict)}/{len(bad)} answered 'no such file'"
    )
    assert_sound(drill)
    assert len(good) == 40 and len(bad) == 40, (len(good), len(bad))
    assert len(good_ok) == 40, [e for e in good if e not in good_ok][:3]
    assert len(bad_verdict) == 40, [e for e in bad if e not in bad_verdict][:3]
