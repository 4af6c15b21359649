"""Screen over long-lived ScreenStreams: one per connection to the security service.

`ScreenStreams.Screen(request, timeout=...)` has the unary stub's signature and failure
modes, so `SecurityClient` treats both paths alike (breaker, error classification):

- a screening's own refusal comes back as the `AioRpcError` the unary call would have
  raised, rich details included (`rpc_error_from_status`);
- its deadline is kept here: when it passes, the caller gets DEADLINE_EXCEEDED and a late
  answer is dropped;
- when a stream breaks (the security process died, the connection dropped), every
  screening pending on it fails UNAVAILABLE and the next call opens a new stream; like the
  unary `PooledStub`, a call that fails UNAVAILABLE is tried again on each other usable
  connection (another replica) within its deadline, and with none it fails UNAVAILABLE
  (fail closed, the same classification as a unary transport failure);
- a security service without ScreenStream (UNIMPLEMENTED, an older release) is screened by
  the unary ``fallback`` instead; the stream is tried again after `RETRY_STREAM_S`.

Concurrent calls are multiplexed on a stream by a correlation id (a future each); calls
queued while the stream's writer is busy go out together in one message, which the server
processes as one batch.

Tracing: each attempt is a CLIENT span (`CarriedCall`) whose W3C context travels in its
`ScreenCall`, so a run's trace crosses into security as it does over the unary call.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc

from services.common import CarriedCall, get_logger, rpc_error_from_status
from vigil.security.v1 import security_pb2 as _spb
from vigil.security.v1 import security_pb2_grpc as _spb_grpc

__all__ = ["RETRY_STREAM_S", "ScreenStreams"]

SCREEN_METHOD = "/vigil.security.v1.SecurityService/Screen"
"""The call a screening on the stream stands for (its CLIENT span's name, as for the unary call)."""
RETRY_STREAM_S = 60.0
"""After UNIMPLEMENTED, how long Screen stays unary before trying the stream again."""
MAX_BATCH = 256
"""Screenings per stream message at most (bounds one message's size and the server's batch)."""

_log = get_logger("vigil.workflow.security")
Unary = Callable[..., Awaitable[_spb.ScreenResponse]]


def _failure(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class _Unimplemented(Exception):
    """The server does not implement ScreenStream; the pending screenings were never seen."""


class _Stream:
    """One ScreenStream call, its pending screenings by id, and its reader and writer tasks."""

    def __init__(self, stub: Any, ids: itertools.count[int]) -> None:
        self._ids = ids
        self._pending: dict[int, asyncio.Future[_spb.ScreenResponse]] = {}
        self._outbox: list[_spb.ScreenCall] = []
        self._wake = asyncio.Event()
        self._call = stub.ScreenStream()
        self.broken: BaseException | None = None
        self._tasks = [
            asyncio.create_task(self._write(), name="screen-stream-write"),
            asyncio.create_task(self._read(), name="screen-stream-read"),
        ]

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def screen(
        self,
        request: _spb.ScreenRequest,
        timeout: float | None,  # noqa: ASYNC109
        trace_context: dict[str, str],
    ) -> _spb.ScreenResponse:
        loop = asyncio.get_running_loop()
        call_id = next(self._ids)
        future: asyncio.Future[_spb.ScreenResponse] = loop.create_future()
        self._pending[call_id] = future
        # Without tracing no map is set at all (building even an empty one costs ~2 us a call).
        self._outbox.append(
            _spb.ScreenCall(id=call_id, request=request, trace_context=trace_context)
            if trace_context
            else _spb.ScreenCall(id=call_id, request=request)
        )
        self._wake.set()
        timer = None if timeout is None else loop.call_later(timeout, self._expire, call_id)
        try:
            return await future
        finally:
            if timer is not None:
                timer.cancel()
            self._pending.pop(call_id, None)  # answered, expired or cancelled: a late answer is dropped

    def _expire(self, call_id: int) -> None:
        future = self._pending.pop(call_id, None)
        if future is not None and not future.done():
            future.set_exception(_failure(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"))

    async def _write(self) -> None:
        try:
            while True:
                await self._wake.wait()
                # One loop turn more: calls started in this turn join the message (one write).
                await asyncio.sleep(0)
                self._wake.clear()
                while self._outbox:
                    batch, self._outbox = self._outbox[:MAX_BATCH], self._outbox[MAX_BATCH:]
                    await self._call.write(_spb.ScreenStreamRequest(calls=batch))
        except Exception as exc:  # the call failed or finished: the stream is unusable either way
            self._break(exc)

    async def _read(self) -> None:
        try:
            while True:
                message = await self._call.read()
                if message is grpc.aio.EOF:
                    raise _failure(grpc.StatusCode.UNAVAILABLE, "screen stream ended by the server")
                for result in message.results:
                    future = self._pending.pop(result.id, None)
                    if future is None or future.done():
                        continue  # expired or cancelled meanwhile
                    if result.HasField("response"):
                        future.set_result(result.response)
                    else:
                        future.set_exception(rpc_error_from_status(result.status))  # type: ignore[arg-type]
        except grpc.aio.AioRpcError as err:
            self._break(_Unimplemented() if err.code() is grpc.StatusCode.UNIMPLEMENTED else err)
        except Exception as exc:  # anything else leaves no reader: nothing pending may wait forever
            self._break(exc)
        except asyncio.CancelledError:
            self._break(_failure(grpc.StatusCode.UNAVAILABLE, "screen stream closed"))
            raise

    def _break(self, exc: BaseException) -> None:
        """End the stream (once) and fail every pending screening: UNAVAILABLE, or
        `_Unimplemented` (never processed: the caller falls back to the unary call)."""
        if self.broken is None:
            self.broken = exc
            self._call.cancel()
            for task in self._tasks:
                if task is not asyncio.current_task():
                    task.cancel()
        reason = exc if isinstance(exc, _Unimplemented) else _unavailable(exc)
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(reason)

    async def close(self) -> None:
        self._break(_failure(grpc.StatusCode.UNAVAILABLE, "screen stream closed"))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _unavailable(exc: BaseException) -> grpc.aio.AioRpcError:
    """UNAVAILABLE for whatever broke a stream: no decision, fail closed, retryable."""
    if isinstance(exc, grpc.aio.AioRpcError) and exc.code() is grpc.StatusCode.UNAVAILABLE:
        return exc
    what = f"{exc.code().name} {exc.details() or ''}" if isinstance(exc, grpc.aio.AioRpcError) else repr(exc)
    return _failure(grpc.StatusCode.UNAVAILABLE, f"screen stream broke: {what}".strip())


class ScreenStreams:
    """Screen on one stream per channel, round-robin; the unary ``fallback`` when unsupported."""

    def __init__(
        self,
        channels: Sequence[grpc.aio.Channel],
        fallback: Unary,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._channels = list(channels)
        self._stubs = [_spb_grpc.SecurityServiceStub(c) for c in channels]
        self._streams: list[_Stream | None] = [None] * len(self._stubs)
        self._next = itertools.count()
        self._ids = itertools.count(1)
        self._fallback = fallback
        self._mono = monotonic
        self._unary_until = float("-inf")
        self.opened = 0
        """Streams opened so far (a broken one is replaced on the next call)."""

    @property
    def streaming(self) -> bool:
        """False while the server is known not to implement ScreenStream."""
        return self._mono() >= self._unary_until

    @property
    def in_flight(self) -> int:
        """Screenings waiting for their answer, over every stream."""
        return sum(s.in_flight for s in self._streams if s is not None)

    def _usable(self, index: int) -> bool:
        """The stream there is open, or its connection is READY (asked to connect otherwise)."""
        stream = self._streams[index]
        if stream is not None and stream.broken is None:
            return True
        return self._channels[index].get_state(try_to_connect=True) is grpc.ChannelConnectivity.READY

    def _pick(self, tried: set[int]) -> int | None:
        """The next usable channel in rotation not ``tried``; with none usable, the next in rotation
        on a first attempt (one attempt, no waiting), None on a retry.

        As `PooledStub` does for unary calls: connections that are not READY are skipped while
        another is usable (and asked to connect meanwhile, so the streams spread over the replicas).
        """
        n = len(self._stubs)
        first = next(self._next) % n
        rotation = [i for i in ((first + k) % n for k in range(n)) if i not in tried]
        for index in rotation:
            if self._usable(index):
                return index
        return None if tried or not rotation else rotation[0]

    def _stream(self, index: int) -> _Stream:
        stream = self._streams[index]
        if stream is None or stream.broken is not None:
            stream = self._streams[index] = _Stream(self._stubs[index], self._ids)
            self.opened += 1
        return stream

    # The stub's name and signature (`timeout` is the call's deadline): interchangeable with it.
    async def Screen(
        self,
        request: _spb.ScreenRequest,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
        metadata: Any = None,
    ) -> _spb.ScreenResponse:
        """Screen on a stream. UNAVAILABLE (a broken stream, or the server's own) is tried again
        on each other usable connection within the deadline, as `PooledStub` does for the unary
        call: a dying replica costs a retry on another, not a failed run."""
        if not self.streaming:
            return await self._fallback(request, timeout=timeout, metadata=metadata)
        deadline = None if timeout is None else self._mono() + timeout
        tried: set[int] = set()
        index = self._pick(tried)
        while True:
            assert index is not None
            left = None if deadline is None else max(0.001, deadline - self._mono())
            try:
                return await self._attempt(index, request, left)
            except _Unimplemented:
                if self.streaming:
                    _log.warning("security service has no ScreenStream: using unary Screen")
                self._unary_until = self._mono() + RETRY_STREAM_S
                left = None if deadline is None else max(0.001, deadline - self._mono())
                return await self._fallback(request, timeout=left, metadata=metadata)
            except grpc.aio.AioRpcError as err:
                tried.add(index)
                retry = err.code() is grpc.StatusCode.UNAVAILABLE
                if not retry or (deadline is not None and self._mono() >= deadline):
                    raise
                index = self._pick(tried)
                if index is None:
                    raise

    async def _attempt(
        self,
        index: int,
        request: _spb.ScreenRequest,
        timeout: float | None,  # noqa: ASYNC109
    ) -> _spb.ScreenResponse:
        """One screening on stream ``index``, traced as a CLIENT call."""
        call = CarriedCall(SCREEN_METHOD)
        code = grpc.StatusCode.UNKNOWN
        try:
            response = await self._stream(index).screen(request, timeout, call.carrier)
            code = grpc.StatusCode.OK
            return response
        except grpc.aio.AioRpcError as err:
            code = err.code()
            raise
        except _Unimplemented:
            code = grpc.StatusCode.UNIMPLEMENTED
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            call.finish(code)

    async def close(self) -> None:
        streams = [s for s in self._streams if s is not None]
        self._streams = [None] * len(self._stubs)
        for stream in streams:
            await stream.close()
