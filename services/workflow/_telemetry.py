"""Traces of run execution: spans per run, attempt, step, breaker rejection and fallback
(the executor's metrics are read at scrape time by `services.workflow._metrics`).

The StartRun server span itself carries ``vigil.run_id`` and ``vigil.workflow`` (`annotate_rpc`).
Span tree of one run (children of the StartRun server span when StartRun dispatched it,
because the run's task copies the caller's context; roots when a restart resumes it):

    workflow.run                 vigil.run_id, vigil.workflow
      workflow.attempt           vigil.attempt; error status when the attempt failed
        workflow.step <name>     one per executed step (skipped finished steps: an event)
        workflow.breaker_rejected  the breaker refused the attempt without running it
      workflow.fallback          one per fallback tried (vigil.fallback)

While tracing is off `tracer()` is the no-op tracer: no span objects are recorded. Under a
parent the sampler dropped (most StartRuns with the default ratio sampler) no child span
is made at all: each would be a non-recording span costing a sampler call, a context
attach and a generator per block, and the parent's unsampled context stays current for
anything downstream (the Screen call propagates the decision).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span, Status, StatusCode, get_current_span
from prometheus_client import Counter

from services.common import log_fields, tracer, tracing_enabled

if TYPE_CHECKING:
    pass

__all__ = [
    "annotate_rpc",
    "attempt_span",
    "breaker_rejected",
    "fallback_span",
    "record_transition",
    "run_span",
    "step_span",
]

RUN_TRANSITIONS = Counter(
    "vigil_workflow_run_transitions_total", "Runs entering a state, by workflow.", ["workflow", "state"]
)


# While tracing is off a span block is this shared no-op context: no generator, no
# attributes dict and no context attach per run (the no-op tracer still does those).
_NO_SPAN: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()


def _no_spans() -> bool:
    """Tracing is off, or the current trace was not sampled (a root run still gets a span)."""
    if not tracing_enabled():
        return True
    parent = get_current_span().get_span_context()
    return parent.is_valid and not parent.trace_flags.sampled


@contextlib.contextmanager
def _span_cm(name: str, attributes: dict[str, Any]) -> Iterator[Span]:
    # record_exception/set_status_on_exception: a failed attempt or step shows as an error.
    with tracer().start_as_current_span(name, attributes=attributes) as span:
        yield span


def annotate_rpc(run_id: str, workflow: str) -> None:
    """Name the run on the current RPC's server span (StartRun's root span carries
    ``vigil.run_id``, so a trace UI finds the trace by run id)."""
    if tracing_enabled():
        span = get_current_span()
        span.set_attribute("vigil.run_id", run_id)
        span.set_attribute("vigil.workflow", workflow)


def current_trace_id() -> str:
    """The current span's trace id as 32 hex digits, or "" when not tracing."""
    if not tracing_enabled():
        return ""
    context = get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else ""


@contextlib.contextmanager
def run_span(run_id: str, workflow: str) -> Iterator[None]:
    """The span of one run's execution; log lines inside carry run_id and workflow."""
    with log_fields(run_id=run_id, workflow=workflow):
        if _no_spans():
            yield
            return
        with _span_cm("workflow.run", {"vigil.run_id": run_id, "vigil.workflow": workflow}):
            yield


def attempt_span(run_id: str, workflow: str, attempt: int) -> contextlib.AbstractContextManager[Any]:
    if _no_spans():
        return _NO_SPAN
    return _span_cm(
        "workflow.attempt", {"vigil.run_id": run_id, "vigil.workflow": workflow, "vigil.attempt": attempt}
    )


def step_span(run_id: str, workflow: str, step: str) -> contextlib.AbstractContextManager[Any]:
    if _no_spans():
        return _NO_SPAN
    return _span_cm(
        f"workflow.step {step}", {"vigil.run_id": run_id, "vigil.workflow": workflow, "vigil.step": step}
    )


def fallback_span(run_id: str, workflow: str, fallback: str) -> contextlib.AbstractContextManager[Any]:
    if _no_spans():
        return _NO_SPAN
    return _span_cm(
        "workflow.fallback", {"vigil.run_id": run_id, "vigil.workflow": workflow, "vigil.fallback": fallback}
    )


def breaker_rejected(run_id: str, workflow: str, breaker: str, retry_after_s: float) -> None:
    """A zero-length span marking that the breaker refused an attempt."""
    if _no_spans():
        return
    span = tracer().start_span(
        "workflow.breaker_rejected",
        attributes={
            "vigil.run_id": run_id,
            "vigil.workflow": workflow,
            "vigil.breaker": breaker,
            "vigil.retry_after_s": retry_after_s,
        },
    )
    span.set_status(Status(StatusCode.ERROR, "circuit breaker open"))
    span.end()


def record_transition(workflow: str, state: str) -> None:
    RUN_TRANSITIONS.labels(workflow, state).inc()
