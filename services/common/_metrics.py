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
import time
from collections.abc import Iterable
from typing import Any

import grpc
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from services.common._observe import Observation, ObservingInterceptor, split_method

__all__ = ["LATENCY_BUCKETS", "MetricsInterceptor", "MetricsServer"]

# Latency buckets (seconds): sub-millisecond health checks up to multi-second workflow runs.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _RpcFamilies:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["grpc_type", "grpc_service", "grpc_method"]
        self.started = Counter(
            "grpc_server_started_total", "RPCs started on the server.", labels, registry=registry
        )
        self.handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by status code.",
            [*labels, "grpc_code"],
            registry=registry,
        )
        self.seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time to complete an RPC, by status code.",
            [*labels, "grpc_code"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


# A registry can hold each family once; several servers in one process share them.
_families: dict[int, _RpcFamilies] = {}
_families_lock = threading.Lock()


def _rpc_families(registry: CollectorRegistry) -> _RpcFamilies:
    with _families_lock:
        fam = _families.get(id(registry))
        if fam is None:
            fam = _families[id(registry)] = _RpcFamilies(registry)
        return fam


class _MethodMetrics:
    """The label children of one method, resolved once: ``labels()`` takes a lock and a
    dict lookup per call, which is most of what metrics would cost an RPC."""

    __slots__ = ("_fam", "_labels", "by_code", "started")

    def __init__(self, fam: _RpcFamilies, labels: tuple[str, str, str]) -> None:
        self._fam, self._labels = fam, labels
        self.started = fam.started.labels(*labels)
        self.by_code: dict[grpc.StatusCode, tuple[Any, Any]] = {}

    def ended(self, code: grpc.StatusCode) -> tuple[Any, Any]:
        pair = self.by_code.get(code)
        if pair is None:
            pair = self.by_code[code] = (
                self._fam.handled.labels(*self._labels, code.name),
                self._fam.seconds.labels(*self._labels, code.name),
            )
        return pair


class _Timed(Observation):
    __slots__ = ("_m", "_t0")

    def __init__(self, m: _MethodMetrics) -> None:
        self._m, self._t0 = m, time.perf_counter()
        m.started.inc()

    def finish(self, code: grpc.StatusCode, error: BaseException | None) -> None:
        elapsed = time.perf_counter() - self._t0
        handled, seconds = self._m.ended(code)
        handled.inc()
        seconds.observe(elapsed)


class MetricsInterceptor(ObservingInterceptor):
    """Counts every RPC and times it, labelled with its final status code."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        super().__init__()
        self._fam = _rpc_families(registry)
        # (method, kind) -> its metric children; methods are a small fixed set per server.
        self._methods: dict[tuple[str, str], _MethodMetrics] = {}

    def begin(self, method: str, kind: str, context: Any) -> Observation:
        key = (method, kind)
        m = self._methods.get(key)
        if m is None:
            service, name = split_method(method)
            m = self._methods[key] = _MethodMetrics(self._fam, (kind, service, name))
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
