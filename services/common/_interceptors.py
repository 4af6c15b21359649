"""Server interceptors. `ErrorMapping` is always installed, innermost, by `VigilServer`.

Later concerns (auth, tracing, metrics) plug in as further `grpc.aio.ServerInterceptor`s
passed to `VigilServer(interceptors=...)`; they run outside `ErrorMapping`, so they see
the final status of every call.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from services.common._errors import Unimplemented, VigilError
from services.common._status import to_grpc_status

__all__ = ["ErrorMapping", "wrap_handler"]

_log = logging.getLogger("vigil.rpc")

Behavior = Callable[..., Any]


async def _abort_for(exc: BaseException, method: str, context: grpc.aio.ServicerContext) -> None:
    """Abort the call with the status that `exc` stands for. Always raises."""
    if isinstance(exc, VigilError):
        await context.abort_with_status(to_grpc_status(exc))
    if isinstance(exc, NotImplementedError):
        # The generated base servicer raises this for RPCs a service has not built yet.
        await context.abort_with_status(to_grpc_status(Unimplemented(f"{method} is not implemented")))
    # A bug, not bad input: log it with a reference the caller can quote, reveal nothing else.
    ref = uuid.uuid4().hex[:12]
    _log.error(
        "unhandled error in %s (ref %s)", method, ref, exc_info=exc, extra={"method": method, "ref": ref}
    )
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error (ref {ref})")


def _wrap_unary(behavior: Behavior, method: str) -> Behavior:
    async def call(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behavior(request_or_iterator, context)
        except grpc.aio.AbortError:
            raise  # the servicer aborted deliberately; its status stands
        except Exception as exc:
            await _abort_for(exc, method, context)

    return call


def _wrap_stream(behavior: Behavior, method: str) -> Behavior:
    if inspect.isasyncgenfunction(behavior):

        async def gen(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                async for item in behavior(request_or_iterator, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort_for(exc, method, context)

        return gen
    return _wrap_unary(behavior, method)  # a coroutine that writes with context.write()


_WRAPPERS: dict[str, Callable[[Behavior, str], Behavior]] = {
    "unary_unary": _wrap_unary,
    "stream_unary": _wrap_unary,
    "unary_stream": _wrap_stream,
    "stream_stream": _wrap_stream,
}
_FACTORIES = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def wrap_handler(
    handler: grpc.RpcMethodHandler, wrap: Callable[[str, Behavior], Behavior]
) -> grpc.RpcMethodHandler:
    """Return ``handler`` with its behavior replaced by ``wrap(kind, behavior)``.

    ``kind`` is one of unary_unary, unary_stream, stream_unary, stream_stream.
    """
    for kind, factory in _FACTORIES.items():
        behavior = getattr(handler, kind)
        if behavior is not None:
            return factory(  # type: ignore[operator]
                wrap(kind, behavior),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


class ErrorMapping(grpc.aio.ServerInterceptor):
    """Turns `VigilError`s raised by servicers into statuses (rich details included),
    NotImplementedError into UNIMPLEMENTED, and anything else into a logged INTERNAL."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        return wrap_handler(handler, lambda kind, behavior: _WRAPPERS[kind](behavior, method))
