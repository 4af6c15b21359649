"""Prometheus metrics: per-RPC counters and latency, domain metric families, ``/metrics``.

RPC metrics follow go-grpc-prometheus / py-grpc-prometheus names so existing
dashboards work: ``grpc_server_started_total``, ``grpc_server_handled_total`` and
``grpc_server_handling_seconds`` labelled by ``grpc_type``, ``grpc_service``,
``grpc_method`` (and ``grpc_code`` once a call has ended).

Each service defines its own domain families (``vigil_<service>_...``, default registry)
in its own ``_telemetry`` module; this module holds only the machinery they share. Gauges of state
that lives in an object (breakers, queues) are read from it at scrape time by a
collector beside that object (e.g. services.workflow._metrics).
"""

from __future__ import annotations

import threading
import weakref
from bisect import bisect_left
from collections.abc import Iterable
from itertools import accumulate
from time import perf_counter
from typing import Any

import grpc
from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from services.common._observe import Observation, ObservingInterceptor, split_method

__all__ = ["LATENCY_BUCKETS", "MetricsInterceptor", "MetricsServer"]

# Latency buckets (seconds): sub-millisecond health checks up to multi-second workflow runs.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _Ended:
    """Calls of one method that ended with one code: count, latency sum, bucket counts."""

    __slots__ = ("buckets", "count", "total_s")

    def __init__(self) -> None:
        self.count = 0
        self.total_s = 0.0
        # Not cumulative: buckets[i] counts calls in (LATENCY_BUCKETS[i-1], LATENCY_BUCKETS[i]];
        # the last one those above every bound. The scrape adds them up.
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total_s += seconds
        self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1


class _MethodMetrics:
    """One method's RPC counts and latencies (one label set of each family), as plain numbers.

    Why not prometheus-client's Counter/Histogram children: each ``inc``/``observe`` takes a
    lock, and three of them per call were most of what metrics cost the cheapest RPC
    (grpc.health.v1 Check). Invariant: only the event loop thread that runs a process's
    grpc.aio handlers updates these, so ``+=`` needs no lock; a scrape on another thread
    copies them as they are (it may miss the call being recorded at that instant).
    """

    __slots__ = ("by_code", "labels", "started")

    def __init__(self, labels: tuple[str, str, str]) -> None:
        self.labels = labels
        self.started = 0
        self.by_code: dict[str, _Ended] = {}

    def ended(self, code: grpc.StatusCode) -> _Ended:
        ended = self.by_code.get(code.name)
        if ended is None:
            ended = self.by_code[code.name] = _Ended()
        return ended


_LABELS = ["grpc_type", "grpc_service", "grpc_method"]
_BOUNDS = [floatToGoString(b) for b in LATENCY_BUCKETS] + ["+Inf"]


class _RpcCollector(Collector):
    """The RPC families of one registry, read from every method's numbers at scrape time."""

    def __init__(self) -> None:
        self._methods: dict[tuple[str, str, str], _MethodMetrics] = {}
        self._lock = threading.Lock()  # creating a method's entry only, never per call

    def method(self, labels: tuple[str, str, str]) -> _MethodMetrics:
        with self._lock:
            m = self._methods.get(labels)
            if m is None:
                m = self._methods[labels] = _MethodMetrics(labels)
            return m

    def collect(self) -> Iterable[Metric]:
        started = CounterMetricFamily("grpc_server_started", "RPCs started on the server.", labels=_LABELS)
        handled = CounterMetricFamily(
            "grpc_server_handled",
            "RPCs completed on the server, by status code.",
            labels=[*_LABELS, "grpc_code"],
        )
        seconds = HistogramMetricFamily(
            "grpc_server_handling_seconds",
            "Time to complete an RPC, by status code.",
            labels=[*_LABELS, "grpc_code"],
        )
        with self._lock:
            methods = list(self._methods.values())
        for m in methods:
            started.add_metric(m.labels, m.started)
            for code, ended in list(m.by_code.items()):  # list(): one step, under the GIL
                labels = [*m.labels, code]
                handled.add_metric(labels, ended.count)
                cumulative = zip(_BOUNDS, accumulate(ended.buckets), strict=True)
                seconds.add_metric(labels, list(cumulative), ended.total_s)
        return [started, handled, seconds]


# A registry can hold each family once; several servers in one process share them. Weak keys:
# a test's registry that is gone must not hand its collector to a new one at the same id.
_collectors: weakref.WeakKeyDictionary[CollectorRegistry, _RpcCollector] = weakref.WeakKeyDictionary()
_collectors_lock = threading.Lock()


def _rpc_collector(registry: CollectorRegistry) -> _RpcCollector:
    with _collectors_lock:
        collector = _collectors.get(registry)
        if collector is None:
            collector = _collectors[registry] = _RpcCollector()
            registry.register(collector)
        return collector


class _Timed(Observation):
    __slots__ = ("_m", "_t0")

    def __init__(self, m: _MethodMetrics) -> None:
        self._m, self._t0 = m, perf_counter()
        m.started += 1

    def finish(self, code: grpc.StatusCode, error: BaseException | None) -> None:
        self._m.ended(code).observe(perf_counter() - self._t0)


class MetricsInterceptor(ObservingInterceptor):
    """Counts every RPC and times it, labelled with its final status code."""

    activates = False

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        super().__init__()
        self._collector = _rpc_collector(registry)
        # (method, kind) -> its numbers; methods are a small fixed set per server.
        self._methods: dict[tuple[str, str], _MethodMetrics] = {}

    def begin(self, method: str, kind: str, context: Any) -> Observation:
        key = (method, kind)
        m = self._methods.get(key)
        if m is None:
            service, name = split_method(method)
            m = self._methods[key] = self._collector.method((kind, service, name))
        return _Timed(m)


class _Process(Collector):
    """Everything in the process-wide default registry (RPC and domain families)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


class MetricsServer:
    """The process's ``/metrics`` endpoint (prometheus-client's threaded HTTP server):
    the default registry plus ``collectors`` (scrape-time readers of one app's state, kept
    out of the default registry so several apps can live in one test process).

    A thread, not the event loop: a slow scrape never delays RPCs, and the loop never
    delays a scrape of a process that is struggling, which is when metrics matter most.
    """

    def __init__(self, host: str, port: int, collectors: Iterable[Collector] = ()) -> None:
        registry = CollectorRegistry()
        registry.register(_Process())
        for collector in collectors:
            registry.register(collector)
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.port: int = self._server.server_port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
