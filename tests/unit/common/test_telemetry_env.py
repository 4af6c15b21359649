"""When the OTEL_* environment turns trace export on."""

from __future__ import annotations

import pytest

from services.common._telemetry import DEFAULT_SAMPLE_RATIO, _default_sampler, tracing_wanted


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4317"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, False),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, True),
    ],
)
def test_tracing_wanted(env: dict[str, str], wanted: bool) -> None:
    assert tracing_wanted(env) is wanted


def _decide(sampler: object, trace_id: int, parent: object = None) -> bool:
    from opentelemetry.sdk.trace.sampling import Decision

    result = sampler.should_sample(parent, trace_id, "x")  # type: ignore[attr-defined]
    return result.decision is Decision.RECORD_AND_SAMPLE


def test_default_sampler_follows_parents_and_records_one_trace_in_ten() -> None:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    sampler = _default_sampler({})
    ids = range(1, 2**64, 2**64 // 2000)  # trace ids spread over the ratio sampler's range
    share = sum(_decide(sampler, i) for i in ids) / len(ids)
    assert share == pytest.approx(DEFAULT_SAMPLE_RATIO, abs=0.02)
    for flags, expected in ((TraceFlags.SAMPLED, True), (TraceFlags.DEFAULT, False)):
        parent = trace.set_span_in_context(
            NonRecordingSpan(SpanContext(2**64 - 1, 7, is_remote=True, trace_flags=TraceFlags(flags)))
        )
        assert _decide(sampler, 2**64 - 1, parent) is expected  # the caller decided


def test_sampler_settings_from_the_environment() -> None:
    assert _default_sampler({"OTEL_TRACES_SAMPLER": "always_on"}) is None  # the SDK reads it
    half = _default_sampler({"OTEL_TRACES_SAMPLER_ARG": "0.5"})
    ids = range(1, 2**64, 2**64 // 2000)
    assert sum(_decide(half, i) for i in ids) / len(ids) == pytest.approx(0.5, abs=0.02)
    bad = _default_sampler({"OTEL_TRACES_SAMPLER_ARG": "lots"})
    assert sum(_decide(bad, i) for i in ids) / len(ids) == pytest.approx(DEFAULT_SAMPLE_RATIO, abs=0.02)
