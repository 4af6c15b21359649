"""Tracing over real grpc.aio servers, exported by OTLP/gRPC to a real receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc
from opentelemetry import context as otel_context

from services.common import (
    CarriedCall,
    Instrumentation,
    NotFound,
    ServerConfig,
    VigilServer,
    carried_server_call,
    client_interceptors,
    configure_logging,
    get_logger,
    log_fields,
    set_log_redactor,
    tracer,
    tracing_enabled,
)
from services.security import install_log_redaction
from tests.conftest import eventually
from vigil.workflow.v1 import workflow_pb2 as wf
from vigil.workflow.v1 import workflow_pb2_grpc as wf_grpc

WF = "vigil.workflow.v1.WorkflowService"
SERVER, CLIENT, INTERNAL = 2, 3, 1


class Relay(wf_grpc.WorkflowServiceServicer):
    """GetRun asks a downstream server's health over a traced channel; unknown ids are NOT_FOUND."""

    def __init__(self, downstream: str) -> None:
        self.downstream = downstream

    async def GetRun(self, request: wf.GetRunRequest, context: grpc.aio.ServicerContext) -> wf.GetRunResponse:
        if request.run_id == "missing":
            raise NotFound(f"run {request.run_id!r} not found")
        if request.run_id == "down":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "downstream is down")
        with (
            tracer().start_as_current_span("relay.step", attributes={"vigil.run_id": request.run_id}),
            log_fields(run_id=request.run_id),
        ):
            get_logger("test.relay").info("relaying %s for %s", request.run_id, "bob@example.com")
            async with grpc.aio.insecure_channel(self.downstream, interceptors=client_interceptors()) as ch:
                await hpb_grpc.HealthStub(ch).Check(hpb.HealthCheckRequest(service=""))
        return wf.GetRunResponse()


async def _server(name: str, servicer: wf_grpc.WorkflowServiceServicer | None = None) -> VigilServer:
    cfg = ServerConfig(port=0, grace_period_s=0.5)
    obs = Instrumentation(name, cfg)
    srv = VigilServer(cfg, name, interceptors=obs.server_interceptors)
    srv.add_servicer(wf_grpc.add_WorkflowServiceServicer_to_server, servicer or Relay(""), WF)
    obs.attach(srv)
    await srv.start()
    return srv


@pytest.fixture
def log_policy() -> Iterator[None]:
    """This process's log policy, as each Vigil entry point registers it at start-up."""
    install_log_redaction()
    yield
    set_log_redactor(None)


async def test_one_trace_across_two_servers_with_parent_links(otlp, capsys, log_policy) -> None:
    configure_logging("INFO")
    down = await _server("downstream")
    up = await _server("upstream", Relay(down.address))
    assert tracing_enabled()
    try:
        async with grpc.aio.insecure_channel(up.address) as ch:
            await wf_grpc.WorkflowServiceStub(ch).GetRun(wf.GetRunRequest(run_id="r-42"))
    finally:
        await up.stop()  # graceful shutdown flushes the queued spans
        await down.stop()
    spans = await eventually(lambda: len(otlp.spans) >= 4 and otlp.spans, timeout=5)
    server = otlp.named(f"{WF}/GetRun")[0]
    step = otlp.named("relay.step")[0]
    # contrib's client interceptor names its span with the leading slash of the gRPC path
    client = next(s for s in spans if s.name == "/grpc.health.v1.Health/Check" and s.kind == CLIENT)
    remote = next(s for s in spans if s.name == "grpc.health.v1.Health/Check" and s.kind == SERVER)
    assert {s.trace_id for s in (server, step, client, remote)} == {server.trace_id}
    assert server.parent_id == "" and server.kind == SERVER
    assert step.parent_id == server.span_id and step.attributes["vigil.run_id"] == "r-42"
    assert client.parent_id == step.span_id
    assert remote.parent_id == client.span_id
    assert server.attributes["rpc.system"] == "grpc"
    assert server.attributes["rpc.service"] == WF and server.attributes["rpc.method"] == "GetRun"
    assert server.attributes["rpc.grpc.status_code"] == 0
    # The log line written inside the step carries its trace and span ids and the bound run id.
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    relayed = next(x for x in lines if x["msg"].startswith("relaying r-42"))
    assert "bob@example.com" not in relayed["msg"] and "[REDACTED:email]" in relayed["msg"]
    assert relayed["trace_id"] == step.trace_id and relayed["span_id"] == step.span_id
    assert relayed["run_id"] == "r-42"


async def test_error_mapping_and_abort_record_final_status(otlp) -> None:
    srv = await _server("solo")
    try:
        async with grpc.aio.insecure_channel(srv.address) as ch:
            stub = wf_grpc.WorkflowServiceStub(ch)
            for run_id, code in (
                ("missing", grpc.StatusCode.NOT_FOUND),
                ("down", grpc.StatusCode.UNAVAILABLE),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.GetRun(wf.GetRunRequest(run_id=run_id))
                assert info.value.code() == code
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.CancelRun(wf.CancelRunRequest())
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await srv.stop()
    spans = await eventually(lambda: len(otlp.named(f"{WF}/GetRun")) == 2 and otlp.spans)
    by_code = {s.attributes["rpc.grpc.status_code"]: s for s in spans if s.kind == SERVER}
    # NOT_FOUND (raised -> abort_with_status by ErrorMapping): a client error, status left unset
    assert by_code[5].status_code == 0
    # UNAVAILABLE (context.abort) and UNIMPLEMENTED are server errors: status ERROR
    assert by_code[14].status_code == 2
    assert by_code[12].status_code == 2 and by_code[12].name == f"{WF}/CancelRun"


async def test_health_watch_streams_with_tracing_on(otlp) -> None:
    srv = await _server("watched")
    try:
        async with grpc.aio.insecure_channel(srv.address) as ch:
            call = hpb_grpc.HealthStub(ch).Watch(hpb.HealthCheckRequest(service=WF))
            assert (await asyncio.wait_for(call.read(), 2)).status == hpb.HealthCheckResponse.SERVING
            await srv.health.set(WF, hpb.HealthCheckResponse.NOT_SERVING)
            assert (await asyncio.wait_for(call.read(), 2)).status == hpb.HealthCheckResponse.NOT_SERVING
            await srv.health.set(WF, hpb.HealthCheckResponse.SERVING)
            assert (await asyncio.wait_for(call.read(), 2)).status == hpb.HealthCheckResponse.SERVING
            call.cancel()
            await eventually(lambda: srv.health.watcher_count(WF) == 0)
            # a second watcher after the first was cancelled still works
            call2 = hpb_grpc.HealthStub(ch).Watch(hpb.HealthCheckRequest(service=WF))
            assert (await asyncio.wait_for(call2.read(), 2)).status == hpb.HealthCheckResponse.SERVING
            call2.cancel()
    finally:
        await srv.stop()
    watches = await eventually(lambda: otlp.named("grpc.health.v1.Health/Watch"))
    assert watches[0].kind == SERVER
    assert watches[0].attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]


async def test_tracing_off_installs_nothing(monkeypatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    obs = Instrumentation("off", ServerConfig(port=0), metrics=False)
    assert obs.server_interceptors == () and client_interceptors() == [] and not tracing_enabled()
    # A call carried in a stream message sends no context and makes none current.
    call = CarriedCall("/vigil.security.v1.SecurityService/Screen")
    assert call.carrier == {}
    call.finish(grpc.StatusCode.OK)
    carried = carried_server_call("/vigil.security.v1.SecurityService/Screen", {"traceparent": "x"}, "")
    before = otel_context.get_current()
    with carried.activate():
        assert otel_context.get_current() == before
