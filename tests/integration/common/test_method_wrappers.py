"""Observers wrap each method's handler once, at registration, and still see every call."""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc

from services.common import Observation, ObservingInterceptor, ServerConfig, VigilServer
from vigil.workflow.v1 import workflow_pb2 as wpb
from vigil.workflow.v1 import workflow_pb2_grpc as wpb_grpc

CHECK = "/grpc.health.v1.Health/Check"
LIST = "/vigil.workflow.v1.WorkflowService/ListWorkflows"


class _Seen(Observation):
    def __init__(self, log: list[tuple[str, grpc.StatusCode]], method: str) -> None:
        self.log, self.method = log, method

    def finish(self, code: grpc.StatusCode, error: BaseException | None) -> None:
        self.log.append((self.method, code))


class Counting(ObservingInterceptor):
    def __init__(self) -> None:
        super().__init__()
        self.wrapped: list[str] = []
        self.calls: list[tuple[str, grpc.StatusCode]] = []

    def wrap_method(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        self.wrapped.append(method)
        return super().wrap_method(method, handler)

    def begin(self, method: str, kind: str, context: Any) -> Observation:
        return _Seen(self.calls, method)


async def test_wrapped_once_per_method_and_every_call_observed_with_its_final_code() -> None:
    counting = Counting()
    server = VigilServer(ServerConfig(port=0, grace_period_s=0), "test", interceptors=[counting])
    # The generated base servicer raises NotImplementedError: ErrorMapping (inside) answers it.
    server.add_servicer(
        wpb_grpc.add_WorkflowServiceServicer_to_server,
        wpb_grpc.WorkflowServiceServicer(),
        "vigil.workflow.v1.WorkflowService",
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            health = hpb_grpc.HealthStub(channel)
            for _ in range(5):
                await health.Check(hpb.HealthCheckRequest(service=""))
            try:
                await wpb_grpc.WorkflowServiceStub(channel).ListWorkflows(wpb.ListWorkflowsRequest())
            except grpc.aio.AioRpcError as err:
                assert err.code() is grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop(0)
    assert counting.wrapped.count(CHECK) == 1  # at registration, not per call
    assert counting.calls.count((CHECK, grpc.StatusCode.OK)) == 5
    assert (LIST, grpc.StatusCode.UNIMPLEMENTED) in counting.calls
    # It never ran as a per-call gRPC interceptor (that path caches what it wraps).
    assert counting._cache == {}
