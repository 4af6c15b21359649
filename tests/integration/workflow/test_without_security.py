"""What the workflow service decides on its own, and failing closed when security is down."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct

from services.common import InvalidArgument, NotFound, Unavailable
from services.workflow._app import WorkflowApp
from services.workflow._degradation import Level
from services.workflow._model import RunQuery
from services.workflow._policies import BreakerState
from services.workflow.client import pb
from tests.conftest import eventually
from tests.integration.workflow import plugins
from tests.integration.workflow.conftest import StartWorkflow, client, free_port, start_security


async def test_security_down_is_unavailable_and_the_handler_never_runs(no_security_app: WorkflowApp) -> None:
    async with client(no_security_app, "tok") as c:
        with pytest.raises(Unavailable, match="security service unavailable"):
            await c.start_run("counting", {"x": 1}, wait=True, timeout_s=5)
    page = await no_security_app.store.list_runs(RunQuery())
    assert plugins.CALLS == [] and page.runs == []  # nothing accepted, nothing ran
    stats = no_security_app.executor.stats["counting"]
    # One attempt: StartRun is retried only by the client's StartRetry, which `client` turns off.
    assert stats.errors_by_category["dependency"] == 1 and stats.started == 0


async def test_unknown_workflow_is_not_found(no_security_app: WorkflowApp) -> None:
    async with client(no_security_app, "tok") as c:
        with pytest.raises(NotFound, match="'nope'"):
            await c.start_run("nope", {})


async def test_oversized_params_are_invalid_argument(no_security_app: WorkflowApp) -> None:
    async with client(no_security_app, "tok") as c:
        with pytest.raises(InvalidArgument) as info:
            await c.start_run("counting", {"blob": "x" * 70_000})
    assert info.value.violations[0].field == "params" and info.value.violations[0].reason == "TOO_LARGE"


@pytest.mark.parametrize("depth", [12, 300])
async def test_deep_nesting_is_invalid_argument(no_security_app: WorkflowApp, depth: int) -> None:
    value: dict[str, object] = {}
    for _ in range(depth):
        value = {"n": value}
    async with client(no_security_app, "tok") as c:
        with pytest.raises(InvalidArgument) as info:
            await c.start_run("counting", value)
    # 12 levels: our own depth limit (10 here) names params; 300: protobuf cannot parse the request.
    assert info.value.violations[0].field == ("params" if depth == 12 else "request")


async def test_bad_state_filter_is_invalid_argument(no_security_app: WorkflowApp) -> None:
    async with client(no_security_app, "tok") as c:
        with pytest.raises(InvalidArgument, match="states"):
            await c.list_runs(states=[42])


async def test_reads_fail_closed_when_security_is_down(no_security_app: WorkflowApp) -> None:
    async with client(no_security_app, "tok") as c:
        with pytest.raises(Unavailable):
            await c.cancel_run("any")


async def test_read_only_refuses_new_runs(no_security_app: WorkflowApp) -> None:
    no_security_app.gate.published = Level.READ_ONLY
    async with client(no_security_app, "tok") as c:
        with pytest.raises(Unavailable, match="READ_ONLY"):
            await c.start_run("counting", {})


async def test_list_workflows_fails_closed_while_security_is_down(no_security_app: WorkflowApp) -> None:
    async with client(no_security_app, "tok") as c:
        with pytest.raises(Unavailable, match="security service unavailable"):
            await c.list_workflows()


async def test_service_health_and_raw_status_codes(no_security_app: WorkflowApp) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with grpc.aio.insecure_channel(no_security_app.server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        resp = await health.Check(health_pb2.HealthCheckRequest(service="vigil.workflow.v1.WorkflowService"))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
        stub = pb_grpc().WorkflowServiceStub(channel)
        big = Struct()
        big.update({"blob": "x" * 70_000})
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.StartRun(pb.StartRunRequest(workflow="counting", params=big))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def pb_grpc():  # type: ignore[no-untyped-def]
    from vigil.workflow.v1 import workflow_pb2_grpc

    return workflow_pb2_grpc


async def test_runs_are_accepted_again_soon_after_security_returns(
    start_workflow: StartWorkflow, tmp_path: Path
) -> None:
    port = free_port()
    app = await start_workflow(f"127.0.0.1:{port}")
    security = None
    try:
        async with client(app, "tok") as c:
            with pytest.raises(Unavailable):
                await c.start_run("counting", {}, timeout_s=3)
        security = await start_security(tmp_path, port=port)
        async with client(app, security.alice) as c:

            async def accepted() -> bool:
                try:
                    run, _ = await c.start_run("counting", {}, wait=True, timeout_s=3)
                except Unavailable:
                    return False
                return run.state == pb.RUN_STATE_SUCCEEDED

            await eventually(accepted, timeout=10, interval=0.2)
        assert app.gate.level is Level.NORMAL  # our own dependency view recovered too
    finally:
        if security is not None:
            await security.server.stop(0)


async def test_security_breaker_opens_and_fails_fast(no_security_app: WorkflowApp) -> None:
    from vigil.workflow.v1 import workflow_pb2_grpc

    meta = (("authorization", "Bearer tok"),)
    async with grpc.aio.insecure_channel(no_security_app.server.address) as channel:
        stub = workflow_pb2_grpc.WorkflowServiceStub(channel)  # no client retries: one try per call
        codes = []
        for _ in range(7):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.StartRun(pb.StartRunRequest(workflow="counting"), metadata=meta, timeout=5)
            codes.append((info.value.code(), info.value.details()))
    assert all(code == grpc.StatusCode.UNAVAILABLE for code, _ in codes)
    assert no_security_app.security.breaker.state is BreakerState.OPEN
    assert "circuit breaker 'security' is open" in codes[-1][1]
