"""Optional OTLP/gRPC push of this process's Prometheus metrics.

On when ``OTEL_METRICS_EXPORTER`` names ``otlp`` or ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``
is set (``OTEL_SDK_DISABLED=true`` wins). A bare ``OTEL_EXPORTER_OTLP_ENDPOINT`` turns on
traces only, so a trace-only collector never receives calls it does not implement.
Every ``OTEL_METRIC_EXPORT_INTERVAL`` ms (default 60000) the default registry is
converted to one ``ExportMetricsServiceRequest``: counters become monotonic cumulative
Sums, gauges Gauges, histograms explicit-bucket Histograms; a final push runs on shutdown.
The Prometheus families stay the single source: ``/metrics`` and OTLP always agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as _ms
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as _ms_grpc
from opentelemetry.proto.common.v1 import common_pb2 as _common
from opentelemetry.proto.metrics.v1 import metrics_pb2 as _m
from opentelemetry.proto.resource.v1 import resource_pb2 as _res
from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric

from services.common._logging import get_logger
from services.common._telemetry import metrics_push_wanted

__all__ = ["MetricsPusher", "metrics_push_wanted", "to_otlp"]

_log = get_logger("vigil.telemetry")
_CUMULATIVE = _m.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


def _attrs(labels: Mapping[str, str]) -> list[_common.KeyValue]:
    return [_common.KeyValue(key=k, value=_common.AnyValue(string_value=v)) for k, v in labels.items()]


def _histogram(family: Metric, start: int, now: int) -> _m.Metric:
    # Prometheus buckets are cumulative and keyed by labels + le; OTLP wants per-bucket counts.
    series: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for s in family.samples:
        labels = {k: v for k, v in s.labels.items() if k != "le"}
        entry = series.setdefault(tuple(sorted(labels.items())), {"buckets": [], "sum": 0.0, "count": 0.0})
        if s.name.endswith("_bucket"):
            entry["buckets"].append((float(s.labels["le"]), s.value))
        elif s.name.endswith("_sum"):
            entry["sum"] = s.value
        elif s.name.endswith("_count"):
            entry["count"] = s.value
    points = []
    for key, entry in series.items():
        buckets = sorted(entry["buckets"])
        counts, previous = [], 0.0
        for _, cumulative in buckets:
            counts.append(int(cumulative - previous))
            previous = cumulative
        points.append(
            _m.HistogramDataPoint(
                attributes=_attrs(dict(key)),
                start_time_unix_nano=start,
                time_unix_nano=now,
                count=int(entry["count"]),
                sum=entry["sum"],
                bucket_counts=counts,
                explicit_bounds=[b for b, _ in buckets if b != float("inf")],
            )
        )
    return _m.Metric(
        name=family.name,
        description=family.documentation,
        histogram=_m.Histogram(data_points=points, aggregation_temporality=_CUMULATIVE),
    )


def _number(family: Metric, start: int, now: int) -> _m.Metric | None:
    points = [
        _m.NumberDataPoint(
            attributes=_attrs(s.labels), start_time_unix_nano=start, time_unix_nano=now, as_double=s.value
        )
        for s in family.samples
        if not s.name.endswith("_created")
    ]
    if family.type == "counter":
        total = _m.Sum(data_points=points, aggregation_temporality=_CUMULATIVE, is_monotonic=True)
        return _m.Metric(name=family.name + "_total", description=family.documentation, sum=total)
    if family.type in ("gauge", "unknown"):
        return _m.Metric(
            name=family.name, description=family.documentation, gauge=_m.Gauge(data_points=points)
        )
    return None  # summaries, info, state sets: not produced by Vigil


def to_otlp(families: Iterable[Metric], service_name: str, start_ns: int) -> _ms.ExportMetricsServiceRequest:
    """One OTLP export request of ``families`` (as collected from a Prometheus registry)."""
    now = time.time_ns()
    metrics = []
    for family in families:
        converted = (
            _histogram(family, start_ns, now)
            if family.type == "histogram"
            else _number(family, start_ns, now)
        )
        if converted is not None:
            metrics.append(converted)
    resource = _res.Resource(attributes=_attrs({"service.name": service_name}))
    scope = _m.ScopeMetrics(scope=_common.InstrumentationScope(name="vigil.prometheus"), metrics=metrics)
    return _ms.ExportMetricsServiceRequest(
        resource_metrics=[_m.ResourceMetrics(resource=resource, scope_metrics=[scope])]
    )


def _channel(endpoint: str) -> grpc.aio.Channel:
    if endpoint.startswith("https://"):
        return grpc.aio.secure_channel(endpoint.removeprefix("https://"), grpc.ssl_channel_credentials())
    return grpc.aio.insecure_channel(endpoint.removeprefix("http://"))


class MetricsPusher:
    """Pushes the default registry by OTLP every interval, and once more on `close`.

    Args:
        service_name: ``service.name`` unless ``OTEL_SERVICE_NAME`` in ``env`` overrides it.
        env: The ``OTEL_*`` settings (endpoint, interval), read by the caller at start-up.
    """

    def __init__(self, service_name: str, env: Mapping[str, str]) -> None:
        self.service_name = env.get("OTEL_SERVICE_NAME") or service_name
        endpoint = (
            env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
            or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            or "http://localhost:4317"
        )
        self.endpoint = endpoint
        self.interval_s = max(0.05, float(env.get("OTEL_METRIC_EXPORT_INTERVAL", "60000")) / 1000)
        self._start_ns = time.time_ns()
        self._channel = _channel(endpoint)
        self._stub = _ms_grpc.MetricsServiceStub(self._channel)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="otlp-metrics")

    async def push(self) -> None:
        request = to_otlp(
            await asyncio.to_thread(lambda: list(REGISTRY.collect())), self.service_name, self._start_ns
        )
        await self._stub.Export(request, timeout=10)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.push()
            except grpc.aio.AioRpcError as exc:  # the collector may be restarting: next interval retries
                _log.warning("OTLP metrics push to %s failed: %s", self.endpoint, exc.code().name)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.push()  # the final values, like the span flush
        await self._channel.close()
