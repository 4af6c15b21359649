"""A run's trace crosses into security over ScreenStream: the workflow's real SecurityClient
screening against the real security server (in this process, tracing on, exported to a real
OTLP receiver). Each screening on the stream carries its own trace context, so it is traced as
the unary Screen is, and a caller's sampling decision is followed on the far side."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.common import PermissionDenied, _carried, carried_server_call, tracer
from services.workflow._policy_config import WorkflowPolicy
from services.workflow._security_client import SecurityClient
from tests.conftest import eventually
from tests.integration.workflow.conftest import SecurityEnv, start_security
from tests.obs_support import OtlpReceiver, Span

SERVER, CLIENT = 2, 3
OPEN = WorkflowPolicy()
SCREEN = "vigil.security.v1.SecurityService/Screen"
STREAM = "vigil.security.v1.SecurityService/ScreenStream"


@pytest.fixture
async def traced(otlp: OtlpReceiver, tmp_path: Path) -> AsyncIterator[tuple[SecurityEnv, SecurityClient]]:
    """Security and the workflow's client to it, both built with tracing on."""
    security = await start_security(tmp_path)
    client = SecurityClient(security.address, timeout_s=20)
    try:
        yield security, client
    finally:
        await client.close()
        await security.server.stop(0)


async def _screen(client: SecurityClient, token: str, policy: WorkflowPolicy = OPEN) -> object:
    return await client.screen(token=token, workflow="echo", params={"n": 1}, policy=policy, request_id="t")


def _of(spans: list[Span], trace_id: str) -> list[Span]:
    return [s for s in spans if s.trace_id == trace_id]


async def test_each_screening_on_the_stream_is_a_client_span_and_its_server_span(
    traced: tuple[SecurityEnv, SecurityClient], otlp: OtlpReceiver
) -> None:
    security, client = traced
    with tracer().start_as_current_span("caller") as caller:
        await _screen(client, security.alice)
        with pytest.raises(PermissionDenied):  # a refusal is a traced call too
            await _screen(client, security.alice, WorkflowPolicy(required_level="PRIVILEGED"))
    assert client._screens is not None and client._screens.opened >= 1  # on streams, not unary
    trace_id = f"{caller.get_span_context().trace_id:032x}"
    caller_id = f"{caller.get_span_context().span_id:016x}"

    def arrived() -> list[Span] | None:
        mine = _of(otlp.spans, trace_id)
        return mine if len([s for s in mine if s.name == SCREEN]) == 2 else None

    spans = await eventually(arrived, timeout=10)
    clients = [s for s in spans if s.name == f"/{SCREEN}" and s.kind == CLIENT]
    servers = [s for s in spans if s.name == SCREEN and s.kind == SERVER]
    # (One process, one tracer provider: which side sent a span shows in tests/e2e/test_obs_trace.py.)
    assert len(clients) == 2 and all(c.parent_id == caller_id for c in clients)
    by_parent = {s.parent_id: s for s in servers}
    assert set(by_parent) == {c.span_id for c in clients}  # each server span under its own call
    codes = sorted((s.attributes["rpc.grpc.status_code"], s.status_code) for s in servers)
    assert codes == [(0, 0), (7, 0)]  # PERMISSION_DENIED is the caller's mistake: status unset
    assert all(s.events == [] for s in servers)  # a refusal is an answer, not an exception
    client_codes = sorted((c.attributes["rpc.grpc.status_code"], c.status_code) for c in clients)
    assert client_codes == [(0, 0), (7, 2)]  # the caller sees a failed call
    assert not any(s.name == STREAM for s in otlp.spans)  # the stream itself gets no span


async def test_an_unsampled_trace_stays_unsampled_across_the_stream(
    traced: tuple[SecurityEnv, SecurityClient], otlp: OtlpReceiver
) -> None:
    security, client = traced
    unsampled = trace.SpanContext(
        trace_id=0x1234_5678_9ABC_DEF0_1234_5678_9ABC_DEF0,
        span_id=0x1234_5678_9ABC_DEF0,
        is_remote=True,
        trace_flags=trace.TraceFlags(0),
    )
    token = otel_context.attach(trace.set_span_in_context(trace.NonRecordingSpan(unsampled)))
    try:
        await _screen(client, security.alice)
    finally:
        otel_context.detach(token)
    # A recorded screening after it: once its spans are in, the unsampled one's would be too.
    with tracer().start_as_current_span("after") as after:
        await _screen(client, security.alice)
    after_id = f"{after.get_span_context().trace_id:032x}"
    await eventually(lambda: any(s.name == SCREEN for s in _of(otlp.spans, after_id)), timeout=10)
    # Neither side recorded it: no span of its trace, nor a new trace started by security.
    assert _of(otlp.spans, f"{unsampled.trace_id:032x}") == []
    assert {s.trace_id for s in otlp.spans if s.name in (SCREEN, f"/{SCREEN}")} == {after_id}


class _BrokenPropagator(TraceContextTextMapPropagator):
    """A propagator that fails on the server side (a bug or a hostile value it chokes on)."""

    def extract(self, carrier: Any, context: Any = None, getter: Any = None) -> Any:
        raise ValueError("propagator bug")


async def test_a_tracing_failure_never_costs_a_screening_its_answer(
    traced: tuple[SecurityEnv, SecurityClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    security, client = traced
    await _screen(client, security.alice)  # the stream is open
    monkeypatch.setattr(_carried, "_W3C", _BrokenPropagator())
    with tracer().start_as_current_span("caller"):
        # More than one stream's in-flight bound would stall the stream if failures leaked slots.
        results = await asyncio.gather(*(_screen(client, security.alice) for _ in range(300)))
    assert len(results) == 300


async def test_only_a_bounded_w3c_context_is_read_from_a_screening(
    traced: tuple[SecurityEnv, SecurityClient],
) -> None:
    # Parsed before the caller is authenticated: baggage and oversized values are not read.
    context = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    obs = carried_server_call(f"/{SCREEN}", {"traceparent": context, "baggage": "k=v"}, "")
    with obs.activate():
        assert f"{trace.get_current_span().get_span_context().trace_id:032x}" == "ab" * 16
        assert otel_baggage.get_all() == {}
    obs.finish(grpc.StatusCode.OK, None)
    huge = carried_server_call(f"/{SCREEN}", {"traceparent": context, "tracestate": "k=" + "v" * 9000}, "")
    with huge.activate():  # the traceparent is kept, the oversized tracestate dropped
        assert trace.get_current_span().get_span_context().trace_state.to_header() == ""
    huge.finish(grpc.StatusCode.OK, None)
