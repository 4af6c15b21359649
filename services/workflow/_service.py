"""The thin gRPC servicer of ``vigil.workflow.v1.WorkflowService``.

It translates protobuf to domain calls on `Operations` and back; domain errors are raised
as they are and mapped to status codes by the shared server runtime.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from services.common import FieldViolation, InvalidArgument
from services.workflow._convert import (
    event_to_proto,
    query_from_proto,
    run_to_proto,
    start_from_proto,
    workflow_to_proto,
)
from services.workflow._runs import Operations
from vigil.workflow.v1 import workflow_pb2 as _pb
from vigil.workflow.v1 import workflow_pb2_grpc as _pb_grpc

__all__ = ["WorkflowServicer", "add_to_server", "bearer_token"]

_SERVICE = "vigil.workflow.v1.WorkflowService"


class _Undecodable:
    """Stands in for a request protobuf could not parse (e.g. nested past its depth limit).

    gRPC answers UNKNOWN when a deserializer raises; returning this instead lets the servicer
    answer INVALID_ARGUMENT like for any other bad input.
    """

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _lenient(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except DecodeError as exc:
            return _Undecodable(str(exc))

    return deserialize


def _checked(request: Any) -> None:
    if isinstance(request, _Undecodable):
        problem = "request could not be parsed"
        if "Depth" in request.problem:
            problem = "request nested too deeply"
        raise InvalidArgument(problem, [FieldViolation("params", problem, "UNPARSABLE")])


def add_to_server(servicer: WorkflowServicer, server: grpc.aio.Server) -> None:
    """Like the generated ``add_WorkflowServiceServicer_to_server``, with lenient request parsing."""
    unary = {
        "ListWorkflows": _pb.ListWorkflowsRequest,
        "StartRun": _pb.StartRunRequest,
        "GetRun": _pb.GetRunRequest,
        "ListRuns": _pb.ListRunsRequest,
        "CancelRun": _pb.CancelRunRequest,
    }
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, name),
            request_deserializer=_lenient(message.FromString),
            response_serializer=lambda m: m.SerializeToString(),
        )
        for name, message in unary.items()
    }
    handlers["WatchRun"] = grpc.unary_stream_rpc_method_handler(
        servicer.WatchRun,
        request_deserializer=_lenient(_pb.WatchRunRequest.FromString),
        response_serializer=lambda m: m.SerializeToString(),
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, handlers),))
    server.add_registered_method_handlers(_SERVICE, handlers)


def bearer_token(context: grpc.aio.ServicerContext) -> str:
    """The token of ``authorization: Bearer <token>`` metadata, or "" (security decides)."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


class WorkflowServicer(_pb_grpc.WorkflowServiceServicer):
    def __init__(self, ops: Operations) -> None:
        self._ops = ops

    async def ListWorkflows(
        self, request: _pb.ListWorkflowsRequest, context: grpc.aio.ServicerContext
    ) -> _pb.ListWorkflowsResponse:
        _checked(request)
        ex = self._ops.executor
        infos = []
        for wf in self._ops.registry.all():
            bh = ex.bulkhead(wf)
            infos.append(
                workflow_to_proto(
                    wf,
                    ex.breaker(wf).state,
                    ex.stats_of(wf.name),
                    bh.running,
                    max(0, bh.reserved - bh.running),
                )
            )
        return _pb.ListWorkflowsResponse(workflows=infos)

    async def StartRun(
        self, request: _pb.StartRunRequest, context: grpc.aio.ServicerContext
    ) -> _pb.StartRunResponse:
        _checked(request)
        result = await self._ops.start(
            start_from_proto(request), token=bearer_token(context), remaining_s=context.time_remaining()
        )
        return _pb.StartRunResponse(run=run_to_proto(result.run), created=result.created)

    async def GetRun(
        self, request: _pb.GetRunRequest, context: grpc.aio.ServicerContext
    ) -> _pb.GetRunResponse:
        _checked(request)
        caller = await self._ops.authenticate(bearer_token(context), context.time_remaining())
        run, steps = await self._ops.get(request.run_id, caller)
        return _pb.GetRunResponse(run=run_to_proto(run, steps))

    async def ListRuns(
        self, request: _pb.ListRunsRequest, context: grpc.aio.ServicerContext
    ) -> _pb.ListRunsResponse:
        _checked(request)
        query = query_from_proto(request)
        caller = await self._ops.authenticate(bearer_token(context), context.time_remaining())
        page, token = await self._ops.list(query, request.page_token, caller)
        return _pb.ListRunsResponse(runs=[run_to_proto(r) for r in page.runs], next_page_token=token)

    async def WatchRun(
        self, request: _pb.WatchRunRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[_pb.WatchRunResponse]:
        _checked(request)
        caller = await self._ops.authenticate(bearer_token(context), context.time_remaining())
        async for event in self._ops.watch(request.run_id, caller):
            yield event_to_proto(event)

    async def CancelRun(
        self, request: _pb.CancelRunRequest, context: grpc.aio.ServicerContext
    ) -> _pb.CancelRunResponse:
        _checked(request)
        caller = await self._ops.authenticate(bearer_token(context), context.time_remaining())
        run = await self._ops.cancel(request.run_id, request.reason, caller)
        return _pb.CancelRunResponse(run=run_to_proto(run))
