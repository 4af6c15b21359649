"""Observability test helpers: a real OTLP/gRPC trace receiver (the collector's
TraceService on port 0) and a /metrics scraper using prometheus-client's parser."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as _ms
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as _ms_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as _ts
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as _ts_grpc
from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Span:
    """One received span, flattened for assertions."""

    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    status_code: int  # 0 unset, 1 ok, 2 error
    events: list[str] = field(default_factory=list)


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def _flatten(request: _ts.ExportTraceServiceRequest) -> list[Span]:
    out = []
    for rs in request.resource_spans:
        res = {a.key: _value(a.value) for a in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(
                    Span(
                        service=str(res.get("service.name", "")),
                        name=s.name,
                        kind=s.kind,
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_id=s.parent_span_id.hex(),
                        attributes={a.key: _value(a.value) for a in s.attributes},
                        status_code=s.status.code,
                        events=[e.name for e in s.events],
                    )
                )
    return out


class _Receiver:
    """A grpc.aio server on port 0 serving this object; ``endpoint`` is its http:// URL."""

    _add: Callable[[Any, grpc.aio.Server], None]

    def __init__(self) -> None:
        self._server: grpc.aio.Server | None = None
        self.endpoint = ""

    async def start(self) -> str:
        self._server = grpc.aio.server()
        self._add(self, self._server)
        port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        self.endpoint = f"http://127.0.0.1:{port}"
        return self.endpoint

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0)


class OtlpReceiver(_Receiver, _ts_grpc.TraceServiceServicer):
    """Collects every exported span; `endpoint` is what OTEL_EXPORTER_OTLP_ENDPOINT should be."""

    _add = staticmethod(_ts_grpc.add_TraceServiceServicer_to_server)

    def __init__(self) -> None:
        super().__init__()
        # Requests are kept as received and flattened on access, so a benchmark's receiver
        # costs the measured process (which also drives the load) as little as possible.
        self._requests: list[_ts.ExportTraceServiceRequest] = []
        self._spans: list[Span] = []

    async def Export(self, request: _ts.ExportTraceServiceRequest, context: Any) -> Any:
        self._requests.append(request)
        return _ts.ExportTraceServiceResponse()

    @property
    def spans(self) -> list[Span]:
        """Every span received so far, oldest first."""
        pending, self._requests = self._requests, []
        for request in pending:
            self._spans.extend(_flatten(request))
        return self._spans

    def named(self, name: str) -> list[Span]:
        return [s for s in self.spans if s.name == name]


MetricKey = tuple[str, frozenset[tuple[str, str]]]


def scrape(port: int) -> dict[MetricKey, float]:
    """GET /metrics and parse it with prometheus-client's parser: {(name, labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def key(name: str, **labels: str) -> MetricKey:
    return name, frozenset(labels.items())


class OtlpMetricsReceiver(_Receiver, _ms_grpc.MetricsServiceServicer):
    """A real OTLP MetricsService on port 0 keeping every export request."""

    _add = staticmethod(_ms_grpc.add_MetricsServiceServicer_to_server)

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[_ms.ExportMetricsServiceRequest] = []

    async def Export(self, request: _ms.ExportMetricsServiceRequest, context: Any) -> Any:
        self.requests.append(request)
        return _ms.ExportMetricsServiceResponse()

    def latest(self, name: str) -> Any:
        """The metric ``name`` from the newest request that has it."""
        for request in reversed(self.requests):
            for rm in request.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        if m.name == name:
                            return m
        return None
