"""Domain errors become the right status with rich details, decoded by a real client."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2

from services.common import (
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    ServerConfig,
    Unavailable,
    VigilError,
    VigilServer,
    bad_request_violations,
    retry_delay_s,
)
from vigil.workflow.v1 import workflow_pb2 as wpb
from vigil.workflow.v1 import workflow_pb2_grpc


class FaultyWorkflows(workflow_pb2_grpc.WorkflowServiceServicer):
    """A servicer whose behaviour is chosen by the request: a fault injector for the edge."""

    async def GetRun(self, request, context):
        match request.run_id:
            case "invalid":
                raise InvalidArgument(
                    "params are invalid",
                    [
                        FieldViolation("params.path", "escapes the root", "PATH_TRAVERSAL"),
                        FieldViolation("x", "bad"),
                    ],
                )
            case "busy":
                raise ResourceExhausted("queue full", retry_after_s=2.5)
            case "down":
                raise Unavailable("the system is OFFLINE", retry_after_s=1.5)
            case "unreachable":
                raise Unavailable("no estimate")
            case "bug":
                raise RuntimeError("secret internals")
            case "huge":
                raise NotFound("no run " + "x" * 100_000)
        raise NotFound(f"no run {request.run_id!r}")

    async def WatchRun(self, request, context):
        yield wpb.WatchRunResponse(type=wpb.RUN_EVENT_TYPE_SNAPSHOT)
        raise NotFound("gone mid-stream")


@pytest.fixture
async def address():
    srv = VigilServer(ServerConfig(port=0), "test")
    srv.add_servicer(
        workflow_pb2_grpc.add_WorkflowServiceServicer_to_server,
        FaultyWorkflows(),
        "vigil.workflow.v1.WorkflowService",
    )
    await srv.start()
    yield srv.address
    await srv.stop(0)


@pytest.fixture
async def channel(address):
    async with grpc.aio.insecure_channel(address) as ch:
        yield ch


@pytest.fixture
def stub(channel):
    return workflow_pb2_grpc.WorkflowServiceStub(channel)


async def call_error(coro) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await coro
    return info.value


async def test_invalid_argument_carries_bad_request_violations(stub) -> None:
    err = await call_error(stub.GetRun(wpb.GetRunRequest(run_id="invalid")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details() == "params are invalid"
    assert bad_request_violations(err) == [
        FieldViolation("params.path", "escapes the root", "PATH_TRAVERSAL"),
        FieldViolation("x", "bad", ""),
    ]


async def test_resource_exhausted_carries_retry_delay(stub) -> None:
    err = await call_error(stub.GetRun(wpb.GetRunRequest(run_id="busy")))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and retry_delay_s(err) == 2.5


async def test_unavailable_carries_a_retry_delay_when_it_has_one(stub) -> None:
    err = await call_error(stub.GetRun(wpb.GetRunRequest(run_id="down")))
    assert err.code() == grpc.StatusCode.UNAVAILABLE and retry_delay_s(err) == 1.5
    err = await call_error(stub.GetRun(wpb.GetRunRequest(run_id="unreachable")))
    assert err.code() == grpc.StatusCode.UNAVAILABLE and retry_delay_s(err) is None


async def test_unexpected_error_is_internal_without_leaking(stub) -> None:
    err = await call_error(stub.GetRun(wpb.GetRunRequest(run_id="bug")))
    assert err.code() == grpc.StatusCode.INTERNAL and "secret" not in err.details() and "ref" in err.details()


async def test_huge_message_is_clipped_not_a_transport_error(stub) -> None:
    err = await call_error(stub.GetRun(wpb.GetRunRequest(run_id="huge")))
    assert err.code() == grpc.StatusCode.NOT_FOUND and len(err.details()) <= 1000


async def test_error_in_stream_after_first_message(stub) -> None:
    call = stub.WatchRun(wpb.WatchRunRequest(run_id="r"))
    assert (await call.read()).type == wpb.RUN_EVENT_TYPE_SNAPSHOT
    err = await call_error(call.read())
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_unbuilt_rpc_is_unimplemented(stub) -> None:
    err = await call_error(stub.ListWorkflows(wpb.ListWorkflowsRequest()))
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_every_error_class_maps_to_its_own_code() -> None:
    from services.common import _errors

    classes = [
        c
        for c in vars(_errors).values()
        if isinstance(c, type) and issubclass(c, VigilError) and c is not VigilError
    ]
    codes = {c.code for c in classes}
    assert len(codes) == len(classes) and grpc.StatusCode.UNKNOWN not in codes


@pytest.mark.parametrize("size", [5 << 20, 10 << 20])
async def test_oversized_request_is_invalid_argument_naming_the_limit(stub, size: int) -> None:
    # One documented limit (server.max_message_bytes, 4 MiB by default), one code: never gRPC's
    # own RESOURCE_EXHAUSTED, which elsewhere means "shed load, retry later".
    params = struct_pb2.Struct()
    params.update({"blob": "x" * size})
    err = await call_error(stub.StartRun(wpb.StartRunRequest(workflow="echo", params=params)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"limit of {4 << 20} bytes (server.max_message_bytes)" in (err.details() or "")
    assert bad_request_violations(err)[0].reason == "TOO_LARGE"


@pytest.mark.parametrize("payload", [b"\xff\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f", bytes(range(256))])
async def test_garbage_request_bytes_are_invalid_argument_not_unknown(channel, payload: bytes) -> None:
    raw = channel.unary_unary("/vigil.workflow.v1.WorkflowService/GetRun")
    err = await call_error(raw(payload, timeout=5))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
    assert bad_request_violations(err)[0].reason == "MALFORMED"


@pytest.mark.parametrize("payload", [b"\xff\xff\xff\xff", b"\x0a\x05hi"])
async def test_garbage_health_check_is_invalid_argument(channel, payload: bytes) -> None:
    # Check answers its own errors (no error-mapping layer): malformed input included.
    raw = channel.unary_unary("/grpc.health.v1.Health/Check")
    err = await call_error(raw(payload, timeout=5))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
    assert bad_request_violations(err)[0].reason == "MALFORMED"


async def test_garbage_bytes_on_a_server_stream_are_invalid_argument(channel) -> None:
    raw = channel.unary_stream("/vigil.workflow.v1.WorkflowService/WatchRun")
    call = raw(b"\xff\xff\xff", timeout=5)
    err = await call_error(call.read())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_from_rpc_error_is_the_inverse_of_the_server_mapping(stub) -> None:
    from services.common import from_rpc_error

    bad = from_rpc_error(await call_error(stub.GetRun(wpb.GetRunRequest(run_id="invalid"))))
    assert isinstance(bad, InvalidArgument) and bad.violations[0].reason == "PATH_TRAVERSAL"
    busy = from_rpc_error(await call_error(stub.GetRun(wpb.GetRunRequest(run_id="busy"))))
    assert isinstance(busy, ResourceExhausted) and busy.retry_after_s == 2.5
    down = from_rpc_error(await call_error(stub.GetRun(wpb.GetRunRequest(run_id="down"))))
    assert isinstance(down, Unavailable) and down.retry_after_s == 1.5
    missing = from_rpc_error(await call_error(stub.GetRun(wpb.GetRunRequest(run_id="r1"))))
    assert isinstance(missing, NotFound) and "r1" in missing.message
    bug = from_rpc_error(await call_error(stub.GetRun(wpb.GetRunRequest(run_id="bug"))))
    assert type(bug) is VigilError and bug.code == grpc.StatusCode.INTERNAL
