"""The examples/ plugin package served for real: a durable multi-step workflow and a
process-isolated CPU-bound one under its limits."""

from __future__ import annotations

import sys

import pytest

from services.workflow._app import WorkflowApp
from services.workflow.client import pb
from tests.conftest import REPO, eventually
from tests.integration.workflow.conftest import SecurityEnv, StartWorkflow, client, has_state, terminal_run

EXAMPLES = {
    "example.pipeline": {"handler": "vigil_examples.pipeline:pipeline"},
    "example.digest": {"handler": "vigil_examples.pipeline:digest"},
    # The same handler with a 1 s CPU budget, to hit the limit quickly.
    "example.digest.tight": {
        "handler": "vigil_examples.pipeline:digest",
        "policy": {"isolation": "process", "cpu_time_s": 1, "retry": {"max_attempts": 1}},
    },
}


@pytest.fixture
async def app(
    start_workflow: StartWorkflow, security: SecurityEnv, monkeypatch: pytest.MonkeyPatch
) -> WorkflowApp:
    # The examples are a separate plugin package; put it on the path as installing it would.
    monkeypatch.setattr(sys, "path", [str(REPO / "examples"), *sys.path])
    return await start_workflow(security.address, workflows=EXAMPLES)


async def test_multi_step_pipeline_persists_each_step(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        run, _ = await c.start_run("example.pipeline", {"items": [" x ", "yy"]}, wait=True)
        assert run.state == pb.RUN_STATE_SUCCEEDED, run.error.message
        got = await c.get_run(run.run_id)
    assert [(s.name, s.completed, s.executions) for s in got.steps] == [
        ("fetch", True, 1),
        ("transform", True, 1),
        ("summarize", True, 1),
    ]
    assert list(got.result.struct_value["items"]) == ["X", "YY"]


async def test_process_isolated_handler_and_its_cpu_limit(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        ok, _ = await c.start_run("example.digest", {"data": "abc", "rounds": 1000}, wait=True)
        assert ok.state == pb.RUN_STATE_SUCCEEDED, ok.error.message
        assert len(ok.result.struct_value["sha256"]) == 64
        hog, _ = await c.start_run("example.digest.tight", {"data": "abc", "rounds": 10**9})
        await eventually(lambda: has_state(c, hog.run_id, pb.RUN_STATE_RUNNING))
        # While a worker burns its CPU budget the service answers and runs other work.
        quick, _ = await c.start_run("echo", {}, wait=True, timeout_s=5)
        assert quick.state == pb.RUN_STATE_SUCCEEDED
        hog = await eventually(lambda: terminal_run(c, hog.run_id), timeout=20)
    assert hog.state == pb.RUN_STATE_FAILED
    assert hog.error.category == pb.ERROR_CATEGORY_RESOURCE and "CPU time limit" in hog.error.message
