"""RPC metrics are kept as plain numbers and read at scrape time: what a scrape sees must be
what prometheus-client's own Counter and Histogram would have exposed for the same calls."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from services.common import _metrics
from services.common._metrics import LATENCY_BUCKETS, MetricsInterceptor

LABELS = ["grpc_type", "grpc_service", "grpc_method"]
# Exact bucket bounds (a call of exactly 1 ms counts in le="0.001"), zero, tiny, beyond every bound.
LATENCIES = [0.0, 1e-9, 0.0005, 0.0007, 0.001, 0.0011, 0.25, 2.5, 29.9, 30.0, 31.0, 1234.5]
CODES = [grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE]


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")  # creation times: prometheus-client's, not ours
    }


def reference(calls: list[tuple[str, str, float, grpc.StatusCode]]) -> CollectorRegistry:
    registry = CollectorRegistry()
    started = Counter("grpc_server_started_total", "RPCs started on the server.", LABELS, registry=registry)
    handled = Counter(
        "grpc_server_handled_total",
        "RPCs completed on the server, by status code.",
        [*LABELS, "grpc_code"],
        registry=registry,
    )
    seconds = Histogram(
        "grpc_server_handling_seconds",
        "Time to complete an RPC, by status code.",
        [*LABELS, "grpc_code"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    for method, kind, elapsed, code in calls:
        service, name = method.lstrip("/").rsplit("/", 1)
        started.labels(kind, service, name).inc()
        handled.labels(kind, service, name, code.name).inc()
        seconds.labels(kind, service, name, code.name).observe(elapsed)
    return registry


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Scripted perf_counter readings for `_Timed`: a call's start, then its end."""
    readings: list[float] = []
    it: Iterator[float] = iter(readings)
    monkeypatch.setattr(_metrics, "perf_counter", lambda: next(it))
    return readings


def test_a_scrape_matches_prometheus_client_for_the_same_calls(clock: list[float]) -> None:
    calls = [
        (method, kind, elapsed, CODES[i % len(CODES)])
        for i, elapsed in enumerate(LATENCIES)
        for method, kind in (("/pkg.A/Get", "unary_unary"), ("/pkg.B/Watch", "unary_stream"))
    ]
    for _, _, elapsed, _ in calls:
        clock += [0.0, elapsed]  # elapsed = end - 0.0: exactly the latency given to the reference
    ours = CollectorRegistry()
    interceptor = MetricsInterceptor(ours)
    for method, kind, _, code in calls:
        interceptor.begin(method, kind, None).finish(code, None)

    got, want = samples(ours), samples(reference(calls))
    assert got.keys() == want.keys()
    for k, value in want.items():
        assert got[k] == pytest.approx(value, rel=1e-12, abs=1e-12), k


def test_servers_sharing_a_registry_add_up_and_a_started_call_counts_at_once(clock: list[float]) -> None:
    registry = CollectorRegistry()
    first, second = MetricsInterceptor(registry), MetricsInterceptor(registry)
    clock += [0.0, 0.002, 0.0, 0.5, 0.0]
    first.begin("/pkg.A/Get", "unary_unary", None).finish(grpc.StatusCode.OK, None)
    second.begin("/pkg.A/Get", "unary_unary", None).finish(grpc.StatusCode.OK, None)
    second.begin("/pkg.A/Get", "unary_unary", None)  # still running at the scrape
    labels = {"grpc_type": "unary_unary", "grpc_service": "pkg.A", "grpc_method": "Get"}
    ended = {**labels, "grpc_code": "OK"}
    assert registry.get_sample_value("grpc_server_started_total", labels) == 3
    assert registry.get_sample_value("grpc_server_handled_total", ended) == 2
    assert registry.get_sample_value("grpc_server_handling_seconds_count", ended) == 2
    assert registry.get_sample_value("grpc_server_handling_seconds_bucket", {**ended, "le": "0.0025"}) == 1
    assert registry.get_sample_value("grpc_server_handling_seconds_bucket", {**ended, "le": "0.5"}) == 2
    assert registry.get_sample_value("grpc_server_handling_seconds_sum", ended) == pytest.approx(0.502)
