"""Trace context for calls carried inside stream messages, where no per-call metadata travels.

A Screen on ScreenStream is one such call: `CarriedCall` on the client makes its CLIENT span
and the W3C context to put in the message; `carried_server_call` on the server makes the
SERVER span under it, as `TracingInterceptor` does for a unary call (same span, same sampling
rule: `_server_observation`). Neither ever raises: tracing must never cost a call its answer.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.common._logging import get_logger
from services.common._observe import Observation, split_method
from services.common._telemetry import _server_observation, _state

__all__ = ["CarriedCall", "carried_server_call"]

_log = get_logger("vigil.telemetry")

_W3C = TraceContextTextMapPropagator()
"""What a carried call's context travels as: traceparent and tracestate (no baggage)."""
_CARRIED = {"traceparent": 512, "tracestate": 8192}
"""The keys a carried call's context is read from, and the longest value taken of each."""


class _Untraced(Observation):
    """Tracing is off: nothing made current, nothing to finish."""

    __slots__ = ()

    def finish(self, code: grpc.StatusCode, error: BaseException | None) -> None:
        return None


_UNTRACED = _Untraced()


def carried_server_call(method: str, carrier: Mapping[str, str], peer: str) -> Observation:
    """The SERVER side of one call carried inside a stream message (e.g. a Screen on
    ScreenStream), whose caller sent its trace context in the message (`CarriedCall`).

    Like the interceptor's span for a unary call: a child of the caller's span when the caller
    recorded it, nothing but the caller's context made current when it did not (its sampling
    decision is followed), a new trace when the caller sent none. A no-op while tracing is off.
    """
    if _state.provider is None:
        return _UNTRACED
    try:
        # W3C trace context only, bounded (a stream message may carry thousands of calls, each
        # parsed before the caller is authenticated): no baggage, nothing oversized.
        kept = {
            k: v for k, limit in _CARRIED.items() if (v := carrier.get(k)) is not None and len(v) <= limit
        }
        parent = _W3C.extract(kept) if kept else otel_context.Context()
        return _server_observation(method, "unary_unary", parent, peer)
    except Exception:  # tracing must never cost a call its answer
        _log.exception("tracing a carried %s call failed; served untraced", method)
        return _UNTRACED


class CarriedCall:
    """The CLIENT side of one call carried inside a stream message, where no per-call metadata
    travels: ``carrier`` is the W3C trace context to send in the message (empty while tracing
    is off), and the call's CLIENT span when the current trace is recorded.

    ``finish(code)`` ends the span (once) with the call's final status code.
    """

    __slots__ = ("_span", "carrier")

    def __init__(self, method: str) -> None:
        self._span: trace.Span | None = None
        self.carrier: dict[str, str] = {}
        if _state.provider is None:
            return
        try:  # tracing must never cost the call itself
            current = trace.get_current_span().get_span_context()
            ctx = None
            if not current.is_valid or current.trace_flags.sampled:
                service, name = split_method(method)
                self._span = _state.tracer.start_span(
                    method,  # contrib's client interceptor names CLIENT spans with the leading slash
                    kind=SpanKind.CLIENT,
                    attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
                )
                ctx = trace.set_span_in_context(self._span)
            # An unsampled trace sends its context too: the server must follow that decision.
            _W3C.inject(self.carrier, context=ctx)
        except Exception:
            _log.exception("tracing a carried %s call failed; sent untraced", method)
            self._span, self.carrier = None, {}

    def finish(self, code: grpc.StatusCode) -> None:
        span, self._span = self._span, None
        if span is None:
            return
        try:
            span.set_attribute("rpc.grpc.status_code", code.value[0])
            if code is not grpc.StatusCode.OK:  # a client sees every non-OK answer as a failed call
                span.set_status(Status(StatusCode.ERROR, code.name))
            span.end()
        except Exception:
            _log.exception("ending a carried call's span failed")
