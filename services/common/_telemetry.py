"""OpenTelemetry tracing, configured only by the standard ``OTEL_*`` variables.

Tracing is on when ``OTEL_TRACES_EXPORTER`` names ``otlp``, or when an OTLP endpoint
(``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set and the
exporter is not ``none``; ``OTEL_SDK_DISABLED=true`` turns it off whatever else is set.
When off, no interceptor is installed and `tracer()` is the API's no-op tracer, so
the cost is one attribute lookup per instrumented block.

Everything else is the SDK's own reading of the environment: ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` (resource), ``OTEL_TRACES_SAMPLER``/``_ARG`` (sampler),
``OTEL_EXPORTER_OTLP_*`` (endpoint, headers, TLS), ``OTEL_BSP_*`` (batching). Spans are
exported by a BatchSpanProcessor: a request only appends to an in-memory queue.

One exception: without ``OTEL_TRACES_SAMPLER`` the sampler is ``parentbased_traceidratio``
at `DEFAULT_SAMPLE_RATIO` (or ``OTEL_TRACES_SAMPLER_ARG``), not the SDK's always-on: a
caller's sampling decision is always followed, and of the traces that start here one in
ten is recorded. Recording every request costs about a quarter of a StartRun's throughput
(bench ``obs.tracing``); ``OTEL_TRACES_SAMPLER=always_on`` asks for that explicitly.

Calls carried inside stream messages (a Screen on ScreenStream) carry their own context in
the message: `services.common._carried`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.common._logging import get_logger
from services.common._observe import Observation, ObservingInterceptor, split_method

__all__ = [
    "DEFAULT_SAMPLE_RATIO",
    "TRACE_ID_METADATA",
    "TracingInterceptor",
    "client_interceptors",
    "metrics_push_wanted",
    "server_interceptors",
    "setup_tracing",
    "shutdown_tracing",
    "tracer",
    "tracing_enabled",
    "tracing_wanted",
]

_log = get_logger("vigil.telemetry")
_TRACER_NAME = "vigil"
DEFAULT_SAMPLE_RATIO = 0.1
"""Share of new traces recorded when ``OTEL_TRACES_SAMPLER`` is unset (parents are followed)."""
TRACE_ID_METADATA = "x-vigil-trace-id"
"""Trailing metadata key holding the trace id of a traced call (32 hex digits)."""

# Server-side codes that mean the server failed (OpenTelemetry RPC semantic conventions);
# client mistakes (INVALID_ARGUMENT, NOT_FOUND, ...) leave the span status unset.
_SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


class _State:
    """The process's tracer provider; None while tracing is off."""

    provider: Any = None
    tracer: trace.Tracer = trace.NoOpTracer()


_state = _State()


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _exporters(environ: Mapping[str, str]) -> set[str]:
    """Span exporters the OTEL_* variables ask for: ``otlp`` and/or ``console``."""
    if _truthy(environ.get("OTEL_SDK_DISABLED")):
        return set()
    named = {e.strip().lower() for e in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()}
    if named:
        return named & {"otlp", "console"}
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return {"otlp"} if endpoint else set()


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Whether the OTEL_* variables in ``environ`` ask for trace export (OTLP or console)."""
    return bool(_exporters(environ))


def metrics_push_wanted(environ: Mapping[str, str]) -> bool:
    """Whether the OTEL_* variables in ``environ`` ask for OTLP metrics push.

    Decided here, not in `_otlp_metrics`, so that module and the OTLP protos it loads are
    imported only by processes that push.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {e.strip().lower() for e in environ.get("OTEL_METRICS_EXPORTER", "").split(",") if e.strip()}
    if exporters:
        return "otlp" in exporters
    return bool(environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))


def setup_tracing(service_name: str) -> bool:
    """Configure trace export for this process if the ``OTEL_*`` environment asks for it.

    ``OTEL_TRACES_EXPORTER=console`` writes each finished span as JSON to stdout (a local
    look at traces without a collector); ``otlp,console`` does both.

    Args:
        service_name: ``service.name`` unless ``OTEL_SERVICE_NAME`` overrides it.

    Returns:
        True when tracing is now on. Calling it again replaces the previous provider
        (tests run several processes' worth of servers in one interpreter).
    """
    env = os.environ
    exporters = _exporters(env)
    if not exporters:
        return False
    # Imported only when wanted: the SDK and exporter are not loaded by processes without tracing.
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    attributes = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes), sampler=_default_sampler(env))
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if "otlp" in exporters:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if "console" in exporters:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    if _state.provider is not None:
        _state.provider.shutdown()
    _state.provider = provider
    _state.tracer = provider.get_tracer(_TRACER_NAME)
    sinks = {"otlp": f"OTLP to {endpoint or 'the default endpoint'}", "console": "console (stdout)"}
    _log.info("tracing on: %s", ", ".join(sinks[e] for e in sorted(exporters, reverse=True)))
    return True


def _default_sampler(env: Mapping[str, str]) -> Any:
    """Our default when ``OTEL_TRACES_SAMPLER`` is unset; None lets the SDK read the variables."""
    if env.get("OTEL_TRACES_SAMPLER", "").strip():
        return None
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    ratio = DEFAULT_SAMPLE_RATIO
    with contextlib.suppress(ValueError):
        arg = float(env.get("OTEL_TRACES_SAMPLER_ARG", ""))
        ratio = arg if 0.0 <= arg <= 1.0 else ratio
    return ParentBased(TraceIdRatioBased(ratio))


def tracing_enabled() -> bool:
    """Whether `setup_tracing` turned tracing on in this process."""
    return _state.provider is not None


def tracer() -> trace.Tracer:
    """The process tracer (a no-op tracer while tracing is off)."""
    return _state.tracer


async def shutdown_tracing() -> None:
    """Export what is queued and stop (for `VigilServer.on_shutdown`); idempotent."""
    provider, _state.provider, _state.tracer = _state.provider, None, trace.NoOpTracer()
    if provider is not None:
        # The SDK's flush blocks on the exporter thread; keep the event loop free meanwhile.
        await asyncio.to_thread(provider.force_flush)
        await asyncio.to_thread(provider.shutdown)


def client_interceptors(*, streams: bool = True) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors for `grpc.aio` channels: CLIENT spans and trace context in metadata.

    Empty while tracing is off, so channels built with them cost nothing extra.

    Args:
        streams: Also trace streaming calls. contrib's streaming interceptors hand back an
            async iterator instead of the call, so a caller that uses ``call.read()`` on a
            long-lived stream (healthd's Watch) passes False and traces unary calls only.
    """
    if _state.provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    found = aio_client_interceptors(tracer_provider=_state.provider)
    if not streams:
        found = [i for i in found if isinstance(i, grpc.aio.UnaryUnaryClientInterceptor)]
    return list(found)


class _Getter:
    """Reads W3C trace context from gRPC invocation metadata."""

    def __init__(self, metadata: Any) -> None:
        self._md: dict[str, str] = {}
        for key, value in metadata or ():
            if isinstance(value, str):
                self._md[key.lower()] = value

    def get(self, carrier: Any, key: str) -> list[str] | None:
        value = self._md.get(key.lower())
        return [value] if value is not None else None

    def keys(self, carrier: Any) -> list[str]:
        return list(self._md)


class _Activation:
    """Makes a context current for one step of a call (a plain class: this runs per RPC)."""

    __slots__ = ("_ctx", "_token")

    def __init__(self, ctx: otel_context.Context) -> None:
        self._ctx = ctx
        self._token: object = None

    def __enter__(self) -> None:
        self._token = otel_context.attach(self._ctx)

    def __exit__(self, *exc: object) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]


class _SpanObservation(Observation):
    __slots__ = ("_ctx", "_span")

    def __init__(self, span: trace.Span, ctx: otel_context.Context) -> None:
        self._span = span
        self._ctx = ctx

    @property
    def trace_id(self) -> int:
        """The span's trace id (0 for an invalid span)."""
        return self._span.get_span_context().trace_id

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        return _Activation(self._ctx)

    def finish(self, code: grpc.StatusCode, error: BaseException | None) -> None:
        span = self._span
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code in _SERVER_ERRORS:
            span.set_status(Status(StatusCode.ERROR, code.name))
        if error is not None and not isinstance(error, grpc.aio.AbortError | asyncio.CancelledError):
            span.record_exception(error)
        span.end()


class _Unsampled(Observation):
    """A call whose caller's trace was not sampled: no span, its context current for children."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: otel_context.Context) -> None:
        self._ctx = ctx

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        return _Activation(self._ctx)

    def finish(self, code: grpc.StatusCode, error: BaseException | None) -> None:
        return None


class TracingInterceptor(ObservingInterceptor):
    """SERVER span per RPC: parent from the caller's metadata, ``rpc.*`` attributes, and
    the final status code, aborts included.

    Args:
        exclude: Full method prefixes not to trace (e.g. reflection).
    """

    def __init__(self, exclude: tuple[str, ...] = ("/grpc.reflection.",)) -> None:
        super().__init__()
        self._exclude = exclude

    def wants(self, method: str) -> bool:
        return not method.startswith(self._exclude)

    def begin(self, method: str, kind: str, context: grpc.aio.ServicerContext) -> Observation:
        parent = propagate.extract(None, getter=_Getter(context.invocation_metadata()))  # type: ignore[arg-type]
        obs = _server_observation(method, kind, parent, context.peer() or "")
        if isinstance(obs, _SpanObservation):
            trace_id = obs.trace_id
            if trace_id:
                # The caller learns the trace of its call (a link to it in a trace UI); errors
                # keep it too (`_interceptors` merges it into a rich status's trailers).
                context.set_trailing_metadata(((TRACE_ID_METADATA, trace.format_trace_id(trace_id)),))
        return obs


def _server_observation(method: str, kind: str, parent: otel_context.Context, peer: str) -> Observation:
    """The SERVER side of one call of ``method`` whose caller's context is ``parent``."""
    caller = trace.get_current_span(parent).get_span_context()
    if caller.is_valid and not caller.trace_flags.sampled:
        return _Unsampled(parent)  # the parent-based sampler's answer, without asking it
    service, name = split_method(method)
    span = _state.tracer.start_span(
        method.lstrip("/"),
        context=parent,
        kind=SpanKind.SERVER,
        attributes={
            "rpc.system": "grpc",
            "rpc.service": service,
            "rpc.method": name,
            "rpc.grpc.kind": kind,
            "network.peer.address": peer,
        },
    )
    return _SpanObservation(span, trace.set_span_in_context(span, parent))


def server_interceptors(untraced: tuple[str, ...] = ()) -> list[grpc.aio.ServerInterceptor]:
    """The tracing server interceptor, or nothing while tracing is off.

    ``untraced``: full method names given no span for the whole call, because each message
    carries its own calls' trace context (the handler traces those: `carried_server_call`);
    a span for a stream that lives as long as the process would never be useful.
    """
    if _state.provider is None:
        return []
    return [TracingInterceptor(exclude=("/grpc.reflection.", *untraced))]
