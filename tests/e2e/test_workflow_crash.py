"""kill -9 the real workflow service with runs in flight, restart it, and check that every
accepted run finishes and that steps finished before the crash are never executed again."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.security import Level, new_key
from services.workflow.client import WorkflowClient, pb
from tests.conftest import REPO, Proc, eventually, python_env

pytestmark = pytest.mark.e2e

RUNS = 8
STEPS = ("fetch", "transform", "summarize")


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def start_security(spawn: Callable[..., Proc], tmp: Path) -> tuple[Proc, int, str]:
    token, entry = new_key("e2e", Level.AUTHENTICATED, n=1 << 4)
    cfg = _write(
        tmp / "security.yaml",
        {
            "server": {"port": 0},
            "auth": {"api_keys": [entry.model_dump(mode="json")]},
            "audit": {"db_path": str(tmp / "audit.db")},
        },
    )
    proc = spawn("-m", "services.security", "--config", str(cfg))
    return proc, proc.wait_for_port(), token


def start_workflow(spawn: Callable[..., Proc], cfg: Path) -> tuple[Proc, int]:
    env = python_env(PYTHONPATH=str(REPO / "examples"))
    proc = spawn("-m", "services.workflow", "--config", str(cfg), env=env)
    return proc, proc.wait_for_port()


async def test_kill_9_with_runs_in_flight_then_resume(spawn: Callable[..., Proc], tmp_path: Path) -> None:
    _, sec_port, token = start_security(spawn, tmp_path)
    cfg = _write(
        tmp_path / "workflow.yaml",
        {
            "server": {"port": 0},
            "store_path": str(tmp_path / "runs.db"),
            "instance_id": "e2e",
            "security_address": f"127.0.0.1:{sec_port}",
            "healthd_address": None,
            "load_entry_points": False,
            "workflows": {"example.pipeline": {"handler": "vigil_examples.pipeline:pipeline"}},
            "limits": {"poll_s": 0.2},
        },
    )
    proc, port = start_workflow(spawn, cfg)
    params = {"items": [" a ", "bb", "ccc"], "delay_s": 0.4}
    async with WorkflowClient(f"127.0.0.1:{port}", token=token) as client:
        accepted = [(await client.start_run("example.pipeline", params))[0].run_id for _ in range(RUNS)]

        async def some_steps_done() -> dict[str, set[str]] | None:
            done = {}
            for run_id in accepted:
                run = await client.get_run(run_id)
                done[run_id] = {s.name for s in run.steps if s.completed}
            progressed = sum(bool(v) for v in done.values())
            finished = sum(len(v) == len(STEPS) for v in done.values())
            return done if progressed and finished < RUNS else None

        finished_before_crash = await eventually(some_steps_done, timeout=15, interval=0.05)
    proc.popen.send_signal(signal.SIGKILL)
    assert proc.popen.wait(10) == -signal.SIGKILL

    _, port = start_workflow(spawn, cfg)  # same store, same instance id: resumes at once
    async with WorkflowClient(f"127.0.0.1:{port}", token=token) as client:

        async def all_terminal() -> list[pb.Run] | None:
            runs = [await client.get_run(r) for r in accepted]
            return runs if all(r.state == pb.RUN_STATE_SUCCEEDED for r in runs) else None

        runs = await eventually(all_terminal, timeout=30, interval=0.2)
    for run in runs:
        steps = {s.name: s for s in run.steps}
        assert set(steps) == set(STEPS) and all(s.completed for s in steps.values())
        for name in finished_before_crash[run.run_id]:
            assert steps[name].executions == 1, f"{run.run_id} re-executed finished step {name}"
        assert dict(run.result.struct_value["summary"]) == {"count": 3.0, "chars": 6.0}
    resumed = [r for r in runs if r.attempts > 1]
    assert resumed, "at least one run was interrupted and resumed"
