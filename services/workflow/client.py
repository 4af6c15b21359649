"""Typed async client of ``vigil.workflow.v1.WorkflowService``.

Every call has a deadline; the token goes in ``authorization: Bearer`` metadata; the channel
retries UNAVAILABLE with gRPC's own retry policy. StartRun always carries an idempotency key
(generated once per `WorkflowClient.start_run` call when the caller gives none), and the call
is retried under that same key (`StartRetry`) while the service refuses it as UNAVAILABLE (a
restart, a dependency down), waiting the RetryInfo delay the service names or else a jittered
exponential backoff, within bounded attempts and time: a retry returns the run the first
attempt created, never a second one.
Failures are raised as the domain errors of `services.common` (InvalidArgument keeps its
field violations, ResourceExhausted and Unavailable their retry delay). A RESOURCE_EXHAUSTED
refusal (rate limit, full bulkhead) is first waited out as its RetryInfo says, a bounded number
of times (`RetryAfter`): every unary call here is safe to repeat, StartRun because of its key.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import grpc
import tenacity
from google.protobuf.struct_pb2 import Struct

from services.common import (
    FAST_RECONNECT,
    TRACE_ID_METADATA,
    Cancelled,
    ClientTLSConfig,
    RetryAfter,
    Unavailable,
    from_rpc_error,
    open_client_channel,
)
from vigil.workflow.v1 import workflow_pb2 as pb
from vigil.workflow.v1 import workflow_pb2_grpc as pb_grpc

__all__ = ["SERVICE_CONFIG", "StartRetry", "WorkflowClient", "pb"]

T = TypeVar("T")


def _trace_id(trailers: Any) -> str:
    for key, value in trailers or ():
        if key == TRACE_ID_METADATA:
            return str(value)
    return ""


SERVICE_CONFIG = {
    "methodConfig": [
        # StartRun is retried by `StartRetry` only (under its idempotency key, and at once when
        # a lost connection comes back): the channel's own retries, with their blind random
        # backoffs, would delay the first attempt that reaches a restarted service.
        {"name": [{"service": "vigil.workflow.v1.WorkflowService", "method": "StartRun"}]},
        {
            "name": [{"service": "vigil.workflow.v1.WorkflowService"}],
            "retryPolicy": {
                "maxAttempts": 4,
                "initialBackoff": "0.1s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        },
    ]
}


def _retryable(exc: BaseException) -> bool:
    """Refusals a StartRun retry under the same key can outlast: the service or a dependency
    is down (UNAVAILABLE), or the server cancelled the call (CANCELLED: a server stopping
    without grace; this client never cancels a call it still awaits). RESOURCE_EXHAUSTED is
    waited out per attempt (`RetryAfter`)."""
    return isinstance(exc, Unavailable | Cancelled)


@dataclass(frozen=True)
class StartRetry:
    """How `WorkflowClient.start_run` retries an UNAVAILABLE StartRun under its idempotency key.

    The wait before attempt n+1 is the server's RetryInfo delay (plus up to 10% jitter) when
    it names one, else uniform in [0, min(max_backoff_s, initial_backoff_s * 2**(n-1))] (full
    jitter); no attempt starts once ``max_total_s`` would be exceeded. `WorkflowClient` ends
    a wait early when its channel had lost the connection and connects again.
    """

    max_attempts: int = 10
    """Attempts in all, the first included (1: never retry)."""
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 1.0
    max_total_s: float = 20.0
    """Bound on the whole logical call: attempts and waits."""
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def wait_s(self, attempt: int, exc: BaseException | None) -> float:
        """The wait after failed attempt number ``attempt`` (1-based) that raised ``exc``."""
        advised = getattr(exc, "retry_after_s", None)
        if advised is not None and advised > 0:
            return float(advised) * (1.0 + 0.1 * self.rng.random())
        cap = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (attempt - 1))
        return self.rng.uniform(0.0, cap)

    async def call(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> T:
        """Run ``attempt`` until it succeeds, raises a non-retryable error, or the bounds end;
        the last refusal is raised as it came."""
        started = time.monotonic()

        def wait(rs: tenacity.RetryCallState) -> float:
            return self.wait_s(rs.attempt_number, rs.outcome.exception() if rs.outcome else None)

        def stop(rs: tenacity.RetryCallState) -> bool:
            late = time.monotonic() - started + (rs.upcoming_sleep or 0.0) > self.max_total_s
            return rs.attempt_number >= self.max_attempts or late

        async def once() -> T:  # a coroutine function: tenacity awaits only those
            return await attempt()

        retrying = tenacity.AsyncRetrying(
            stop=stop, wait=wait, sleep=sleep, retry=tenacity.retry_if_exception(_retryable), reraise=True
        )
        return await retrying(once)


class WorkflowClient:
    """Client of one workflow service address.

    Args:
        address: ``host:port``.
        token: Bearer token (API key or JWT); None sends no credentials.
        timeout_s: Default deadline of unary calls (of each attempt).
        retry_after: How RESOURCE_EXHAUSTED refusals are waited out (``RetryAfter(max_attempts=1)``: never).
        start_retry: How an UNAVAILABLE StartRun is retried (``StartRetry(max_attempts=1)``: never).
        tls: TLS/mTLS to the service (None: plaintext), as the services' own clients take it.
    """

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        timeout_s: float = 10.0,
        retry_after: RetryAfter | None = None,
        start_retry: StartRetry | None = None,
        tls: ClientTLSConfig | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._retry_after = retry_after or RetryAfter(max_attempts=4, max_wait_s=5.0)
        self._start_retry = start_retry or StartRetry()
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._channel = open_client_channel(
            address,
            tls,
            # Reconnect quickly: a restarted service serves again within seconds.
            options=[
                ("grpc.enable_retries", 1),
                ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
                *FAST_RECONNECT,
            ],
        )
        self._stub = pb_grpc.WorkflowServiceStub(self._channel)
        self.last_trace_id = ""
        """Trace id of this client's latest unary call (failed ones too) when the service
        traces (``x-vigil-trace-id`` trailing metadata), else "". Read it right after the
        ``await``: no other call of this client can finish in between."""

    async def __aenter__(self) -> WorkflowClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method: Any, request: Any, timeout_s: float | None) -> Any:
        async def attempt() -> Any:
            call = method(request, timeout=timeout_s or self._timeout_s, metadata=self._metadata)
            try:
                response = await call
            except grpc.aio.AioRpcError as err:
                self.last_trace_id = _trace_id(err.trailing_metadata())
                raise from_rpc_error(err) from None
            self.last_trace_id = _trace_id(await call.trailing_metadata())
            return response

        return await self._retry_after.call(attempt)

    async def start_run(
        self,
        workflow: str,
        params: Mapping[str, Any] | None = None,
        *,
        wait: bool = False,
        idempotency_key: str | None = None,
        labels: Mapping[str, str] | None = None,
        not_before: dt.datetime | None = None,
        priority: int = 0,
        timeout_s: float | None = None,
    ) -> tuple[pb.Run, bool]:
        """Start a run; returns (run, created). With ``wait`` the run is terminal if it finished in time.

        Refusals the service may outgrow (UNAVAILABLE; RESOURCE_EXHAUSTED per `RetryAfter`) are
        retried under one idempotency key, generated here once for the whole call when none is
        given, so the call starts at most one run however many attempts it takes.
        """
        request = pb.StartRunRequest(
            workflow=workflow,
            idempotency_key=idempotency_key or f"client-{uuid.uuid4().hex}",
            wait=wait,
            labels=dict(labels or {}),
            priority=priority,
        )
        if params:
            s = Struct()
            s.update(dict(params))
            request.params.CopyFrom(s)
        if not_before is not None:
            request.not_before.FromDatetime(not_before.astimezone(dt.UTC))
        resp = await self._start_retry.call(
            lambda: self._call(self._stub.StartRun, request, timeout_s), sleep=self._until_retry
        )
        return resp.run, resp.created

    async def _until_retry(self, seconds: float) -> None:
        """The wait before a StartRun retry: ``seconds``, or less while the channel has no
        connection (the server is down or restarting): until it connects again, which
        `FAST_RECONNECT` tries every ~100 ms. So a restarted service is called again as soon as
        it serves instead of after a blind backoff; refusals from a reachable server (READY:
        RetryInfo or not) are waited out in full."""
        if self._channel.get_state() is grpc.ChannelConnectivity.READY:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._channel.channel_ready()

    async def get_run(self, run_id: str, *, timeout_s: float | None = None) -> pb.Run:
        return (await self._call(self._stub.GetRun, pb.GetRunRequest(run_id=run_id), timeout_s)).run

    async def list_runs(
        self,
        *,
        workflow: str = "",
        states: list[int] | None = None,
        labels: Mapping[str, str] | None = None,
        page_size: int = 0,
        page_token: str = "",
        timeout_s: float | None = None,
    ) -> tuple[list[pb.Run], str]:
        """One page, newest first; returns (runs, next_page_token or "")."""
        request = pb.ListRunsRequest(
            workflow=workflow,
            states=states or [],
            labels=dict(labels or {}),
            page_size=page_size,
            page_token=page_token,
        )
        resp = await self._call(self._stub.ListRuns, request, timeout_s)
        return list(resp.runs), resp.next_page_token

    async def watch_run(
        self, run_id: str, *, timeout_s: float | None = None
    ) -> AsyncIterator[pb.WatchRunResponse]:
        """Snapshot, then each change, until the run is terminal (``timeout_s``: whole stream)."""
        call = self._stub.WatchRun(
            pb.WatchRunRequest(run_id=run_id), timeout=timeout_s, metadata=self._metadata
        )
        try:
            async for msg in call:
                yield msg
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err) from None

    async def cancel_run(self, run_id: str, reason: str = "", *, timeout_s: float | None = None) -> pb.Run:
        request = pb.CancelRunRequest(run_id=run_id, reason=reason)
        return (await self._call(self._stub.CancelRun, request, timeout_s)).run

    async def get_run_history(
        self, run_id: str, *, timeout_s: float | None = None
    ) -> pb.GetRunHistoryResponse:
        """The run as it is now and its history events, oldest first."""
        return await self._call(self._stub.GetRunHistory, pb.GetRunHistoryRequest(run_id=run_id), timeout_s)

    async def retry_run(
        self,
        run_id: str,
        *,
        resume: bool = False,
        wait: bool = False,
        idempotency_key: str | None = None,
        timeout_s: float | None = None,
    ) -> tuple[pb.Run, bool]:
        """A new run from a terminal run's input (``resume``: skipping its finished steps)."""
        request = pb.RetryRunRequest(
            run_id=run_id,
            resume=resume,
            wait=wait,
            idempotency_key=idempotency_key or f"client-{uuid.uuid4().hex}",
        )
        resp = await self._call(self._stub.RetryRun, request, timeout_s)
        return resp.run, resp.created

    async def list_workflows(self, *, timeout_s: float | None = None) -> list[pb.WorkflowInfo]:
        return list(
            (await self._call(self._stub.ListWorkflows, pb.ListWorkflowsRequest(), timeout_s)).workflows
        )
