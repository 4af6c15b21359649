"""Two real workflow service processes share one PostgreSQL run store; one is killed -9 with
runs in flight. The survivor takes its runs over once their leases expire: every run
finishes, and no step runs twice except the ones the dead replica was in the middle of."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from services.workflow.client import WorkflowClient, pb
from tests.conftest import Proc, eventually
from tests.e2e.test_workflow_crash import _write, start_security, start_workflow
from tests.postgres import postgres_dsn, postgres_server

__all__ = ["postgres_dsn", "postgres_server"]  # fixtures used below

pytestmark = pytest.mark.e2e

RUNS_EACH = 6
STEPS = ("fetch", "transform", "summarize")
LEASE_S = 2.0


def _config(tmp: Path, name: str, dsn: str, security_port: int) -> Path:
    return _write(
        tmp / f"{name}.yaml",
        {
            "server": {"port": 0},
            "store_backend": "postgres",
            "postgres": {"dsn": dsn, "pool_size": 4},
            "instance_id": name,
            "security_address": f"127.0.0.1:{security_port}",
            "healthd_address": None,
            "load_entry_points": False,
            "workflows": {"example.pipeline": {"handler": "vigil_examples.pipeline:pipeline"}},
            "limits": {"poll_s": 0.2, "lease_s": LEASE_S},
        },
    )


async def _rows(dsn: str, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(sql, args)
        return await cur.fetchall()


async def test_kill_9_one_of_two_replicas_survivor_finishes_its_runs(
    spawn: Callable[..., Proc], tmp_path: Path, postgres_dsn: str
) -> None:
    _, sec_port, token = start_security(spawn, tmp_path)
    victim, victim_port = start_workflow(spawn, _config(tmp_path, "wf-a", postgres_dsn, sec_port))
    _, survivor_port = start_workflow(spawn, _config(tmp_path, "wf-b", postgres_dsn, sec_port))
    params = {"items": [" a ", "bb", "ccc"], "delay_s": 0.3}
    accepted: list[str] = []
    for port in (victim_port, survivor_port):
        async with WorkflowClient(f"127.0.0.1:{port}", token=token) as client:
            accepted += [
                (await client.start_run("example.pipeline", params))[0].run_id for _ in range(RUNS_EACH)
            ]

    async def victim_mid_flight() -> bool:
        # Runs still leased to the victim are unfinished; some of them have finished steps.
        ((done,),) = await _rows(
            postgres_dsn,
            "SELECT count(*) FROM steps s JOIN runs r USING (run_id)"
            " WHERE r.lease_owner = 'wf-a' AND s.completed",
        )
        return done > 0

    await eventually(victim_mid_flight, timeout=15, interval=0.02)
    victim.popen.send_signal(signal.SIGKILL)
    assert victim.popen.wait(10) == -signal.SIGKILL
    # What the victim left behind: its unfinished runs, and the steps it was executing (begun,
    # not completed), the only ones allowed to execute again.
    orphaned = {
        run_id: (attempts, expires)
        for run_id, attempts, expires in await _rows(
            postgres_dsn, "SELECT run_id, attempts, lease_expires FROM runs WHERE lease_owner = 'wf-a'"
        )
    }
    finished_at_kill = set(await _rows(postgres_dsn, "SELECT run_id, name FROM steps WHERE completed"))
    in_flight = set(
        await _rows(
            postgres_dsn,
            "SELECT s.run_id, s.name FROM steps s JOIN runs r USING (run_id)"
            " WHERE r.lease_owner = 'wf-a' AND NOT s.completed",
        )
    )
    assert orphaned, "the victim had runs in flight when it was killed"

    async with WorkflowClient(f"127.0.0.1:{survivor_port}", token=token) as client:

        async def all_succeeded() -> list[pb.Run] | None:
            runs = [await client.get_run(r) for r in accepted]
            return runs if all(r.state == pb.RUN_STATE_SUCCEEDED for r in runs) else None

        runs = await eventually(all_succeeded, timeout=30, interval=0.2)
    for run in runs:
        steps = {s.name: s for s in run.steps}
        assert set(steps) == set(STEPS) and all(s.completed for s in steps.values())
        for name, step in steps.items():
            allowed = 2 if (run.run_id, name) in in_flight else 1
            assert step.executions <= allowed, f"{run.run_id}: step {name} ran {step.executions} times"
        assert dict(run.result.struct_value["summary"]) == {"count": 3.0, "chars": 6.0}
        if run.run_id in orphaned:
            attempts, lease_expires = orphaned[run.run_id]
            # Resumed by the survivor (a new attempt), and only once the victim's lease expired.
            assert run.attempts > attempts
            for name, step in steps.items():
                if (run.run_id, name) not in finished_at_kill:
                    assert step.finished_at.ToNanoseconds() / 1e9 >= lease_expires
    assert await _rows(postgres_dsn, "SELECT run_id FROM runs WHERE lease_owner IS NOT NULL") == []
