"""Per-method handler wrapping: `ErrorMapping` (always, innermost) and the observers.

`VigilServer` wraps each method's handler once, when the servicer is registered
(`Registrar`), with every `MethodWrapper` it was given (tracing, metrics) and
`ErrorMapping` innermost, so no gRPC interceptor runs per call: grpc.aio drives any
``ServerInterceptor`` through a chain of coroutines for every RPC, which cost more than
what the interceptors themselves did. Interceptors that are not `MethodWrapper`s are
still installed as gRPC interceptors (outside all of these). Observers run outside
`ErrorMapping`, so they see the final status of every call.

Unparseable request bytes: grpc answers UNKNOWN ("Unexpected DecodeError") when a
deserializer raises, before any servicer code runs. `ErrorMapping` wraps each request's
deserializer so a parse failure becomes a `_Malformed` marker, which the wrapped behavior
answers with INVALID_ARGUMENT like any other bad input (in a request stream, the first
such message ends the call with it: its items cannot be told apart).

Request size: the one documented limit is ``server.max_message_bytes`` (`ServerConfig`),
checked here, in the same wrapped deserializer, for every request message of every server: a
larger one is INVALID_ARGUMENT naming the limit. gRPC's own receive limit is set higher
(`grpc_receive_limit`), so its RESOURCE_EXHAUSTED (which means "shed load, retry later"
elsewhere) is only the last line for requests far beyond the documented limit.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import grpc
from google.protobuf.message import DecodeError

from services.common._errors import FieldViolation, InvalidArgument, Unimplemented, VigilError
from services.common._status import to_grpc_status

__all__ = [
    "ErrorMapping",
    "MethodWrapper",
    "Registrar",
    "WrappingInterceptor",
    "answers_own_errors",
    "chain",
    "error_for",
    "grpc_receive_limit",
    "refuse_malformed",
    "wrap_handler",
]

# gRPC refuses messages beyond this with its own RESOURCE_EXHAUSTED before our code can
# answer; up to it, an oversized request gets our INVALID_ARGUMENT naming the real limit.
_GRPC_RECEIVE_CEILING = 64 << 20


def grpc_receive_limit(max_request_bytes: int) -> int:
    """gRPC's max receive length for a server whose documented request limit is ``max_request_bytes``."""
    return max(_GRPC_RECEIVE_CEILING, max_request_bytes + 1)


_log = logging.getLogger("vigil.rpc")

Behavior = Callable[..., Any]


def _keeping_trailers(status: Any, context: grpc.aio.ServicerContext) -> Any:
    """``status`` with the trailers already set on the call (the trace id) kept: aborting with
    a rich status would otherwise replace them."""
    kept = tuple(context.trailing_metadata() or ())
    return status._replace(trailing_metadata=(*kept, *status.trailing_metadata)) if kept else status


def error_for(exc: BaseException, method: str) -> VigilError:
    """The domain error a servicer's exception is answered with (also per item of a stream)."""
    if isinstance(exc, VigilError):
        return exc
    if isinstance(exc, NotImplementedError):
        # The generated base servicer raises this for RPCs a service has not built yet.
        return Unimplemented(f"{method} is not implemented")
    # A bug, not bad input: log it with a reference the caller can quote, reveal nothing else.
    ref = uuid.uuid4().hex[:12]
    _log.error(
        "unhandled error in %s (ref %s)", method, ref, exc_info=exc, extra={"method": method, "ref": ref}
    )
    return VigilError(f"internal error (ref {ref})")  # code INTERNAL


async def _abort_for(exc: BaseException, method: str, context: grpc.aio.ServicerContext) -> None:
    """Abort the call with the status that `exc` stands for. Always raises."""
    await context.abort_with_status(_keeping_trailers(to_grpc_status(error_for(exc, method)), context))


class _Malformed:
    """Stands in for a request that did not parse as the method's message type."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem

    def error(self) -> InvalidArgument:
        # protobuf's message for messages nested past its recursion limit mentions "depth".
        what = "nested too deeply" if "depth" in self.problem.lower() else "not a valid message"
        return InvalidArgument(
            f"request is {what}: {self.problem}",
            [FieldViolation("request", f"does not parse as the method's message type ({what})", "MALFORMED")],
        )


class _TooLarge(_Malformed):
    """Stands in for a request larger than the documented limit (never parsed)."""

    __slots__ = ("limit", "size")

    def __init__(self, size: int, limit: int) -> None:
        super().__init__("too large")
        self.size, self.limit = size, limit

    def error(self) -> InvalidArgument:
        problem = (
            f"request is {self.size} bytes, larger than the limit of {self.limit} bytes "
            "(server.max_message_bytes)"
        )
        return InvalidArgument(problem, [FieldViolation("request", problem, "TOO_LARGE")])


def _tolerant(
    deserializer: Callable[[bytes], Any] | None, max_request_bytes: int
) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        if len(data) > max_request_bytes:
            return _TooLarge(len(data), max_request_bytes)
        try:
            return deserializer(data)
        except (DecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            return _Malformed(str(exc)[:200])

    return parse


_OWN_ERRORS = "_vigil_answers_own_errors"
F = TypeVar("F", bound=Callable[..., Any])


def answers_own_errors(method: F) -> F:
    """Mark a unary servicer method that never raises: it answers every outcome itself,
    malformed requests included (`refuse_malformed`). `ErrorMapping` then wraps only its
    request parsing, not the call: one coroutine less per call, for the hottest RPC
    (grpc.health.v1 Check)."""
    setattr(method, _OWN_ERRORS, True)
    return method


async def refuse_malformed(request: Any, context: grpc.aio.ServicerContext) -> None:
    """Abort with INVALID_ARGUMENT if ``request`` did not parse (for `answers_own_errors`
    methods; a no-op for a parsed request)."""
    if isinstance(request, _Malformed):
        await context.abort_with_status(to_grpc_status(request.error()))


async def _checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """A request stream whose first malformed or oversized message ends the call (INVALID_ARGUMENT)."""
    async for request in requests:
        if isinstance(request, _Malformed):
            raise request.error()
        yield request


def _wrap_unary(behavior: Behavior, method: str, streamed: bool = False) -> Behavior:
    async def call(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        if streamed:
            request_or_iterator = _checked(request_or_iterator)
        try:
            if isinstance(request_or_iterator, _Malformed):
                raise request_or_iterator.error()
            return await behavior(request_or_iterator, context)
        except grpc.aio.AbortError:
            raise  # the servicer aborted deliberately; its status stands
        except Exception as exc:
            await _abort_for(exc, method, context)

    return call


def _wrap_stream(behavior: Behavior, method: str, streamed: bool = False) -> Behavior:
    if inspect.isasyncgenfunction(behavior):

        async def gen(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if streamed:
                request_or_iterator = _checked(request_or_iterator)
            try:
                if isinstance(request_or_iterator, _Malformed):
                    raise request_or_iterator.error()
                async for item in behavior(request_or_iterator, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort_for(exc, method, context)

        return gen
    return _wrap_unary(behavior, method, streamed)  # a coroutine that writes with context.write()


# Request streams get the same size and parse checks per message (`_checked`).
_WRAPPERS: dict[str, Callable[[Behavior, str], Behavior]] = {
    "unary_unary": _wrap_unary,
    "stream_unary": lambda behavior, method: _wrap_unary(behavior, method, streamed=True),
    "unary_stream": _wrap_stream,
    "stream_stream": lambda behavior, method: _wrap_stream(behavior, method, streamed=True),
}
_FACTORIES = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def wrap_handler(
    handler: grpc.RpcMethodHandler,
    wrap: Callable[[str, Behavior], Behavior],
    deserializer: Callable[[Callable[[bytes], Any] | None], Callable[[bytes], Any] | None] | None = None,
) -> grpc.RpcMethodHandler:
    """Return ``handler`` with its behavior replaced by ``wrap(kind, behavior)``.

    ``kind`` is one of unary_unary, unary_stream, stream_unary, stream_stream. When
    given, ``deserializer`` wraps the request deserializer too.
    """
    for kind, factory in _FACTORIES.items():
        behavior = getattr(handler, kind)
        if behavior is not None:
            parse = handler.request_deserializer
            return factory(  # type: ignore[operator]
                wrap(kind, behavior),
                request_deserializer=deserializer(parse) if deserializer else parse,
                response_serializer=handler.response_serializer,
            )
    return handler


@runtime_checkable
class MethodWrapper(Protocol):
    """Something that wraps one method's handler once, at registration."""

    def wrap_method(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """``handler`` of the full ``method`` name (``/pkg.Service/Method``), wrapped."""
        ...


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """A `MethodWrapper` usable as a plain gRPC interceptor too (wrapped handlers cached per
    method: the registered handler of a method never changes after the server starts)."""

    def __init__(self) -> None:
        self._cache: dict[str, grpc.RpcMethodHandler] = {}

    def wrap_method(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        cached = self._cache.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler  # unknown method: grpc answers UNIMPLEMENTED; not cached (unbounded names)
        wrapped = self._cache[method] = self.wrap_method(method, handler)
        return wrapped


class ErrorMapping(WrappingInterceptor):
    """Turns `VigilError`s raised by servicers into statuses (rich details included),
    unparseable or oversized (``max_request_bytes``) requests (each message of a request
    stream) into INVALID_ARGUMENT,
    NotImplementedError into UNIMPLEMENTED, and anything else into a logged INTERNAL."""

    def __init__(self, max_request_bytes: int = 4 << 20) -> None:
        super().__init__()
        self._max_request_bytes = max_request_bytes

    def wrap_method(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        limit = self._max_request_bytes
        tolerant = lambda parse: _tolerant(parse, limit)  # noqa: E731

        def wrap(kind: str, behavior: Behavior) -> Behavior:
            if kind == "unary_unary" and getattr(behavior, _OWN_ERRORS, False):
                return behavior
            return _WRAPPERS[kind](behavior, method)

        return wrap_handler(handler, wrap, tolerant)


Wrap = Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler]


def chain(wrappers: Sequence[MethodWrapper]) -> Wrap:
    """One wrap function applying ``wrappers``, the first outermost."""

    def wrap(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        for wrapper in reversed(wrappers):
            handler = wrapper.wrap_method(method, handler)
        return handler

    return wrap


class _WrappedGeneric(grpc.GenericRpcHandler):
    """A generic handler whose answers are wrapped, once per method."""

    def __init__(self, inner: grpc.GenericRpcHandler, wrap: Wrap) -> None:
        self._inner, self._wrap = inner, wrap
        self._cache: dict[str, grpc.RpcMethodHandler] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        cached = self._cache.get(method)
        if cached is None:
            handler = self._inner.service(handler_call_details)
            if handler is None:
                return None  # not ours; unknown names are not cached (unbounded)
            cached = self._cache[method] = self._wrap(method, handler)
        return cached


class Registrar:
    """What generated ``add_*Servicer_to_server`` functions are given instead of the server:
    it registers their handlers already wrapped."""

    def __init__(self, server: grpc.aio.Server, wrap: Wrap) -> None:
        self._server, self._wrap = server, wrap

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers([_WrappedGeneric(h, self._wrap) for h in handlers])

    def add_registered_method_handlers(
        self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler]
    ) -> None:
        wrapped = {name: self._wrap(f"/{service}/{name}", h) for name, h in handlers.items()}
        self._server.add_registered_method_handlers(service, wrapped)
