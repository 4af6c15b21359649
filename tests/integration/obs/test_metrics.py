"""/metrics over real HTTP after real RPCs, parsed with prometheus-client's parser."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc

from services.common import Instrumentation, ServerConfig, VigilServer
from tests.conftest import eventually
from tests.obs_support import MetricKey, OtlpMetricsReceiver, key, scrape
from vigil.workflow.v1 import workflow_pb2 as wf
from vigil.workflow.v1 import workflow_pb2_grpc as wf_grpc

WF = "vigil.workflow.v1.WorkflowService"


@pytest.fixture
async def served(monkeypatch):
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    cfg = ServerConfig(port=0, metrics_port=0, grace_period_s=0.5)
    obs = Instrumentation("metered", cfg)
    srv = VigilServer(cfg, "metered", interceptors=obs.server_interceptors)
    srv.add_servicer(wf_grpc.add_WorkflowServiceServicer_to_server, wf_grpc.WorkflowServiceServicer(), WF)
    obs.attach(srv)
    await srv.start()
    assert obs.metrics_server is not None
    yield srv, obs.metrics_server.port
    await srv.stop()


async def test_rpc_counts_and_latency_match_traffic(served) -> None:
    srv, port = served
    before = await asyncio.to_thread(scrape, port)
    async with grpc.aio.insecure_channel(srv.address) as ch:
        health = hpb_grpc.HealthStub(ch)
        for _ in range(3):
            await health.Check(hpb.HealthCheckRequest(service=WF))
        for _ in range(2):
            with pytest.raises(grpc.aio.AioRpcError):
                await health.Check(hpb.HealthCheckRequest(service="nope"))
        with pytest.raises(grpc.aio.AioRpcError):
            await wf_grpc.WorkflowServiceStub(ch).GetRun(wf.GetRunRequest(run_id="x"))
    after = await asyncio.to_thread(scrape, port)

    def delta(k: MetricKey) -> float:
        return after.get(k, 0.0) - before.get(k, 0.0)

    check = {"grpc_type": "unary_unary", "grpc_service": "grpc.health.v1.Health", "grpc_method": "Check"}
    get_run = {"grpc_type": "unary_unary", "grpc_service": WF, "grpc_method": "GetRun"}
    assert delta(key("grpc_server_started_total", **check)) == 5
    assert delta(key("grpc_server_handled_total", **check, grpc_code="OK")) == 3
    assert delta(key("grpc_server_handled_total", **check, grpc_code="NOT_FOUND")) == 2
    assert delta(key("grpc_server_handled_total", **get_run, grpc_code="UNIMPLEMENTED")) == 1
    assert delta(key("grpc_server_handling_seconds_count", **check, grpc_code="OK")) == 3
    assert delta(key("grpc_server_handling_seconds_bucket", **check, grpc_code="OK", le="+Inf")) == 3
    assert 0 < delta(key("grpc_server_handling_seconds_sum", **check, grpc_code="OK")) < 5


async def test_metrics_endpoint_closes_on_shutdown(served) -> None:
    srv, port = served
    await srv.stop()
    with pytest.raises(OSError):
        await asyncio.to_thread(scrape, port)


async def test_otlp_metrics_push_matches_traffic(monkeypatch) -> None:
    rx = OtlpMetricsReceiver()
    # The push settings are handed in, read once at start-up: the process environment
    # (which asks for no push here) is not consulted again.
    monkeypatch.delenv("OTEL_METRICS_EXPORTER", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", raising=False)
    environ = {
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": await rx.start(),
        "OTEL_METRIC_EXPORT_INTERVAL": "100",
    }
    cfg = ServerConfig(port=0, grace_period_s=0)
    obs = Instrumentation("pushed", cfg, environ=environ)
    srv = VigilServer(cfg, "pushed", interceptors=obs.server_interceptors)
    srv.add_servicer(wf_grpc.add_WorkflowServiceServicer_to_server, wf_grpc.WorkflowServiceServicer(), WF)
    obs.attach(srv)
    await srv.start()
    try:
        await eventually(lambda: rx.requests)  # periodic pushes run
        async with grpc.aio.insecure_channel(srv.address) as ch:
            for _ in range(4):
                with pytest.raises(grpc.aio.AioRpcError):
                    await wf_grpc.WorkflowServiceStub(ch).GetRun(wf.GetRunRequest(run_id="x"))
    finally:
        await srv.stop()  # pushes the final values
        await rx.stop()
    handled = rx.latest("grpc_server_handled_total")
    assert handled.sum.is_monotonic
    # The default registry is process-wide: earlier tests in this process may have added
    # GetRun points with other codes (NOT_FOUND, OK, ...); this test's calls are UNIMPLEMENTED.
    ours = {"grpc_method": "GetRun", "grpc_service": WF, "grpc_code": "UNIMPLEMENTED"}
    points = [
        p
        for p in handled.sum.data_points
        if ours.items() <= {a.key: a.value.string_value for a in p.attributes}.items()
    ]
    (point,) = points
    assert point.as_double >= 4  # earlier tests may add
    seconds = rx.latest("grpc_server_handling_seconds")
    hist = next(
        p
        for p in seconds.histogram.data_points
        if ours.items() <= {a.key: a.value.string_value for a in p.attributes}.items()
    )
    assert hist.count == sum(hist.bucket_counts) and hist.count >= 4
    assert len(hist.bucket_counts) == len(hist.explicit_bounds) + 1
    resource = rx.requests[-1].resource_metrics[0].resource
    assert {a.key: a.value.string_value for a in resource.attributes}["service.name"] == "pushed"


async def test_a_busy_metrics_port_leaves_the_server_serving(monkeypatch, caplog) -> None:
    """Two processes configured with one metrics port (replicas, a second stack): the
    second serves its RPCs without /metrics and logs why."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    first_cfg = ServerConfig(port=0, metrics_port=0, grace_period_s=0.5)
    first = Instrumentation("first", first_cfg)
    first_srv = VigilServer(first_cfg, "first", interceptors=first.server_interceptors)
    first.attach(first_srv)
    assert first.metrics_server is not None
    busy = first.metrics_server.port
    cfg = ServerConfig(port=0, metrics_port=busy, grace_period_s=0.5)
    obs = Instrumentation("second", cfg)
    srv = VigilServer(cfg, "second", interceptors=obs.server_interceptors)
    obs.attach(srv)
    await srv.start()
    try:
        assert obs.metrics_server is None
        assert any(
            "metrics disabled" in r.getMessage() and str(busy) in r.getMessage() for r in caplog.records
        )
        async with grpc.aio.insecure_channel(srv.address) as ch:
            reply = await hpb_grpc.HealthStub(ch).Check(hpb.HealthCheckRequest(service=""))
        assert reply.status == hpb.HealthCheckResponse.SERVING
    finally:
        await srv.stop()
        await first.close()
