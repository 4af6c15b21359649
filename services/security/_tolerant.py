"""Malformed request bytes -> INVALID_ARGUMENT instead of grpc's UNKNOWN.

grpc answers UNKNOWN ("Unexpected DecodeError") when request bytes do not parse as the
method's message type, before any servicer code runs. This interceptor wraps each
handler's deserializer so a parse failure becomes a marker, and the behavior answers
it with a proper ``INVALID_ARGUMENT`` status built by the shared error mapping.
Nothing here is security-specific; it belongs in the shared runtime eventually.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from services.common import FieldViolation, InvalidArgument, to_grpc_status, wrap_handler

__all__ = ["MalformedRequests"]


@dataclass(frozen=True)
class _Malformed:
    reason: str


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except (DecodeError, UnicodeDecodeError, ValueError) as exc:
            return _Malformed(str(exc)[:200])

    return parse


class MalformedRequests(grpc.aio.ServerInterceptor):
    """Answers unparseable unary requests with INVALID_ARGUMENT (BadRequest on ``request``)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.response_streaming:
            return handler  # only unary RPCs here (all of SecurityService's)

        def wrap(kind: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if isinstance(request, _Malformed):
                    err = InvalidArgument(
                        f"request is not a valid message: {request.reason}",
                        [
                            FieldViolation(
                                "request", "does not parse as the method's message type", "MALFORMED"
                            )
                        ],
                    )
                    await context.abort_with_status(to_grpc_status(err))
                return await behavior(request, context)

            return call

        wrapped = wrap_handler(handler, wrap)
        return grpc.unary_unary_rpc_method_handler(
            wrapped.unary_unary,
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
