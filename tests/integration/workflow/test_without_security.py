"""What the workflow service decides on its own, and failing closed when security is down."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct

from services.common import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from services.workflow._app import WorkflowApp
from services.workflow._degradation import Level
from services.workflow.client import pb
from tests.integration.workflow import plugins
from tests.integration.workflow.conftest import client_for


async def test_security_down_is_unavailable_and_the_handler_never_runs(no_security_app: WorkflowApp) -> None:
    async with await client_for(no_security_app) as client:
        with pytest.raises(Unavailable, match="security service unavailable"):
            await client.start_run("counting", {"x": 1}, wait=True, timeout_s=5)
        runs, _ = await client.list_runs()
    assert plugins.CALLS == [] and runs == []  # nothing accepted, nothing ran
    stats = no_security_app.executor.stats["counting"]
    # The client's retryPolicy retried UNAVAILABLE (same idempotency key): each try was refused.
    assert stats.errors_by_category["dependency"] == 4 and stats.started == 0


async def test_unknown_workflow_is_not_found(no_security_app: WorkflowApp) -> None:
    async with await client_for(no_security_app) as client:
        with pytest.raises(NotFound, match="'nope'"):
            await client.start_run("nope", {})


async def test_oversized_params_are_invalid_argument(no_security_app: WorkflowApp) -> None:
    async with await client_for(no_security_app) as client:
        with pytest.raises(InvalidArgument) as info:
            await client.start_run("counting", {"blob": "x" * 70_000})
    assert info.value.violations[0].field == "params" and info.value.violations[0].reason == "TOO_LARGE"


@pytest.mark.parametrize("depth", [40, 300])
async def test_deep_nesting_is_invalid_argument(no_security_app: WorkflowApp, depth: int) -> None:
    value: dict[str, object] = {}
    for _ in range(depth):
        value = {"n": value}
    async with await client_for(no_security_app) as client:
        with pytest.raises(InvalidArgument) as info:
            await client.start_run("counting", value)
    assert info.value.violations[0].field == "params"


@pytest.mark.parametrize("token", ["not-a-token", "e30", "eyJ2IjoxLCJzIjo1LCJmIjoiYWJjIn0"])
async def test_bad_page_tokens_are_invalid_argument(no_security_app: WorkflowApp, token: str) -> None:
    async with await client_for(no_security_app) as client:
        with pytest.raises(InvalidArgument) as info:
            await client.list_runs(page_token=token)
    assert info.value.violations[0].field == "page_token"


async def test_bad_page_size_and_state_filter(no_security_app: WorkflowApp) -> None:
    async with await client_for(no_security_app) as client:
        with pytest.raises(InvalidArgument, match="page_size"):
            await client.list_runs(page_size=5000)
        with pytest.raises(InvalidArgument, match="states"):
            await client.list_runs(states=[42])


async def test_unknown_run_is_not_found_everywhere(no_security_app: WorkflowApp) -> None:
    async with await client_for(no_security_app) as client:
        with pytest.raises(NotFound):
            await client.get_run("missing")
        with pytest.raises(NotFound):
            await client.cancel_run("missing")
        with pytest.raises(NotFound):
            async for _ in client.watch_run("missing"):
                pass
        with pytest.raises(InvalidArgument):
            await client.get_run("")


async def test_read_only_refuses_new_runs_but_reads_work(no_security_app: WorkflowApp) -> None:
    no_security_app.gate.published = Level.READ_ONLY
    async with await client_for(no_security_app) as client:
        with pytest.raises(FailedPrecondition, match="READ_ONLY"):
            await client.start_run("counting", {})
        assert await client.list_runs() == ([], "")
        assert len(await client.list_workflows()) >= 4


async def test_list_workflows_shows_policies(no_security_app: WorkflowApp) -> None:
    async with await client_for(no_security_app) as client:
        infos = {w.name: w for w in await client.list_workflows()}
    assert {"echo", "sleep", "flaky", "artifact.verify", "counting", "with_fallback"} <= set(infos)
    assert infos["artifact.verify"].path_fields == ["path"]
    assert infos["with_fallback"].fallbacks == ["static"]
    assert infos["privileged"].required_level == 3  # SECURITY_LEVEL_PRIVILEGED
    assert infos["echo"].breaker_state == pb.BREAKER_STATE_CLOSED


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
