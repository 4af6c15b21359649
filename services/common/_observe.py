"""A base for server interceptors that watch every RPC from start to final status.

Tracing and metrics both need the same thing: a hook when a call starts, the code
it really ended with (servicer return, `abort`/`abort_with_status`, `set_code`,
client cancellation, an escaped exception), and, for tracing, a context to make
current while the servicer's code runs. They subclass `ObservingInterceptor`.

Why not read the status from a wrapped context (what opentelemetry-instrumentation-grpc
does): `abort_with_status` on the real aio context calls its own `abort`, bypassing
a proxy, so the proxy never learns the code. Reading `context.code()` after the
behavior has finished sees every path, because grpc.aio records the code on abort.

Streaming handlers that are async generators are driven step by step: the
observation's context is made current only while the generator runs one step, never
across a ``yield``, so nothing is attached in one task and detached in another (a
generator closed by the loop's finalizer runs in a different context, which is what
breaks long-lived streams like grpc.health.v1 Watch under contrib's interceptor).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import grpc

from services.common._interceptors import WrappingInterceptor, wrap_handler
from services.common._status import status_code

__all__ = ["Observation", "ObservingInterceptor", "final_code", "split_method"]


def split_method(full: str) -> tuple[str, str]:
    """'/pkg.Service/Method' -> ('pkg.Service', 'Method')."""
    service, _, method = full.lstrip("/").rpartition("/")
    return service or "unknown", method


def final_code(context: grpc.aio.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    """The status the call ended with, as the client will see it."""
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    code: Any = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return status_code(code)
    # No code recorded: a clean return is OK; an exception that escaped every handler is UNKNOWN.
    if error is None:
        return grpc.StatusCode.OK
    return grpc.StatusCode.UNKNOWN


class Observation(ABC):
    """One call being observed."""

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        """Context manager entered around each step of the servicer's code."""
        return contextlib.nullcontext()

    @abstractmethod
    def finish(self, code: grpc.StatusCode, error: BaseException | None) -> None:
        """Called exactly once with the final code (must not raise)."""


class ObservingInterceptor(WrappingInterceptor, ABC):
    """Wraps every handler so `begin` sees the start and `finish` the final status.

    A `MethodWrapper`: `VigilServer` wraps each handler once at registration; it also
    works as a plain gRPC interceptor (wrapped handlers cached per method).
    """

    @abstractmethod
    def begin(self, method: str, kind: str, context: grpc.aio.ServicerContext) -> Observation:
        """Start observing one call of the full ``method`` name (runs inside the call's task)."""

    activates = True
    """Whether observations make something current around the servicer's code
    (`Observation.activate`); False saves unary calls the context manager (metrics)."""

    def wants(self, method: str) -> bool:
        """Whether to observe calls to ``method``; all by default."""
        return True

    def wrap_method(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if not self.wants(method):
            return handler
        return wrap_handler(handler, lambda kind, behavior: self._wrap(kind, behavior, method))

    def _wrap(self, kind: str, behavior: Callable[..., Any], method: str) -> Any:
        if inspect.isasyncgenfunction(behavior):
            return self._wrap_generator(kind, behavior, method)
        begin = self.begin
        if not self.activates:

            async def plain(request: Any, context: grpc.aio.ServicerContext) -> Any:
                obs = begin(method, kind, context)
                try:
                    reply = await behavior(request, context)
                except BaseException as exc:
                    obs.finish(final_code(context, exc), exc)
                    raise
                obs.finish(final_code(context, None), None)
                return reply

            return plain

        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            obs = begin(method, kind, context)
            error: BaseException | None = None
            try:
                with obs.activate():
                    return await behavior(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                obs.finish(final_code(context, error), error)

        return call

    def _wrap_generator(
        self, kind: str, behavior: Callable[..., AsyncGenerator[Any, None]], method: str
    ) -> Callable[..., AsyncIterator[Any]]:
        async def gen(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            obs = self.begin(method, kind, context)
            error: BaseException | None = None
            inner = behavior(request, context)
            try:
                while True:
                    # The context is current only while the inner generator runs one step.
                    with obs.activate():
                        try:
                            item = await inner.__anext__()
                        except StopAsyncIteration:
                            break
                    yield item
            except BaseException as exc:
                error = exc
                raise
            finally:
                with obs.activate():
                    await inner.aclose()
                obs.finish(final_code(context, error), error)

        return gen
