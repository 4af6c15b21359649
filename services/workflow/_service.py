"""The thin gRPC servicer of ``vigil.workflow.v1.WorkflowService``.

It translates protobuf to domain calls on `Operations` and back; domain errors are raised
as they are and mapped to status codes by the shared server runtime.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import grpc

from services.common import INLINE_ONLY, Offload, optional_bearer_token
from services.workflow._convert import (
    event_to_proto,
    history_to_proto,
    query_from_proto,
    run_to_proto,
    start_from_proto,
    workflow_to_proto,
)
from services.workflow._model import Run, StepRecord
from services.workflow._runs import Operations
from services.workflow._telemetry import annotate_rpc
from vigil.workflow.v1 import workflow_pb2 as _pb
from vigil.workflow.v1 import workflow_pb2_grpc as _pb_grpc

__all__ = ["WorkflowServicer"]

R = TypeVar("R")


def _token(context: grpc.aio.ServicerContext) -> str:
    """The call's bearer token, or "" without one (security decides whether that is allowed)."""
    return optional_bearer_token(context.invocation_metadata()) or ""


def _page_response(runs: list[_pb.Run], token: str) -> _pb.ListRunsResponse:
    return _pb.ListRunsResponse(runs=runs, next_page_token=token)


class WorkflowServicer(_pb_grpc.WorkflowServiceServicer):
    def __init__(
        self, ops: Operations, max_message_bytes: int = 4 << 20, offload: Offload | None = None
    ) -> None:
        self._ops = ops
        # Converting a large params Struct takes tenths of a second: not on the loop.
        self._offload = offload or INLINE_ONLY
        # Room left for framing and the page token; a page is cut short before exceeding it.
        self._page_budget = int(max_message_bytes * 0.9)

    async def _reply(
        self, run: Run, build: Callable[[_pb.Run], R], steps: list[StepRecord] | None = None
    ) -> R:
        """``build(run_to_proto(run, steps))``: the conversion and the copy into the reply run
        off the loop when the run's params and results are large (`Run.stored_chars`)."""
        size = run.stored_chars + sum(s.stored_chars for s in steps or ())
        return await self._offload.run(size, lambda: build(run_to_proto(run, steps)))

    async def ListWorkflows(
        self, request: _pb.ListWorkflowsRequest, context: grpc.aio.ServicerContext
    ) -> _pb.ListWorkflowsResponse:
        # The catalogue (schemas, breaker states, error counts) is for authenticated callers.
        await self._ops.authenticate_reader(_token(context), context.time_remaining())
        catalogue = self._ops.catalogue()
        return _pb.ListWorkflowsResponse(workflows=[workflow_to_proto(entry) for entry in catalogue])

    async def StartRun(
        self, request: _pb.StartRunRequest, context: grpc.aio.ServicerContext
    ) -> _pb.StartRunResponse:
        size = request.params.ByteSize()
        start = await self._offload.run(size, start_from_proto, request)
        result = await self._ops.start(start, token=_token(context), remaining_s=context.time_remaining())
        annotate_rpc(result.run.run_id, result.run.workflow)
        created = result.created
        return await self._reply(result.run, lambda run: _pb.StartRunResponse(run=run, created=created))

    async def GetRun(
        self, request: _pb.GetRunRequest, context: grpc.aio.ServicerContext
    ) -> _pb.GetRunResponse:
        caller = await self._ops.authenticate_reader(_token(context), context.time_remaining())
        run, steps = await self._ops.get(request.run_id, caller)
        return await self._reply(run, lambda msg: _pb.GetRunResponse(run=msg), steps)

    async def ListRuns(
        self, request: _pb.ListRunsRequest, context: grpc.aio.ServicerContext
    ) -> _pb.ListRunsResponse:
        query = query_from_proto(request)
        caller = await self._ops.authenticate_reader(_token(context), context.time_remaining())
        converted: dict[str, _pb.Run] = {}

        def size_of(run: Run) -> int:
            converted[run.run_id] = run_to_proto(run)
            return int(converted[run.run_id].ByteSize())

        page, token = await self._ops.list(
            query, request.page_token, caller, size_of=size_of, budget_bytes=self._page_budget
        )
        # Building the response copies every run: off the loop too when they are large.
        runs = [converted[r.run_id] for r in page.runs]
        return await self._offload.run(page.stored_chars, _page_response, runs, token)

    async def WatchRun(
        self, request: _pb.WatchRunRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[_pb.WatchRunResponse]:
        caller = await self._ops.authenticate_reader(_token(context), context.time_remaining())
        async for event in self._ops.watch(request.run_id, caller):
            yield await self._offload.run(event.run.stored_chars, event_to_proto, event)

    async def CancelRun(
        self, request: _pb.CancelRunRequest, context: grpc.aio.ServicerContext
    ) -> _pb.CancelRunResponse:
        caller = await self._ops.authenticate(_token(context), context.time_remaining())
        run = await self._ops.cancel(request.run_id, request.reason, caller)
        return await self._reply(run, lambda msg: _pb.CancelRunResponse(run=msg))

    async def GetRunHistory(
        self, request: _pb.GetRunHistoryRequest, context: grpc.aio.ServicerContext
    ) -> _pb.GetRunHistoryResponse:
        caller = await self._ops.authenticate_reader(_token(context), context.time_remaining())
        run, events = await self._ops.history(request.run_id, caller)
        history = [history_to_proto(e) for e in events]
        return await self._reply(run, lambda msg: _pb.GetRunHistoryResponse(run=msg, events=history))

    async def RetryRun(
        self, request: _pb.RetryRunRequest, context: grpc.aio.ServicerContext
    ) -> _pb.RetryRunResponse:
        result = await self._ops.retry(
            request.run_id,
            resume=request.resume,
            idempotency_key=request.idempotency_key,
            wait=request.wait,
            token=_token(context),
            remaining_s=context.time_remaining(),
        )
        created = result.created
        return await self._reply(result.run, lambda run: _pb.RetryRunResponse(run=run, created=created))
