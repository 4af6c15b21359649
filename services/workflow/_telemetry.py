"""Traces and metrics of run execution (spans per run, attempt, step, breaker rejection
and fallback; metrics read from the executor at scrape time).

Span tree of one run (children of the StartRun server span when StartRun dispatched it,
because the run's task copies the caller's context; roots when a restart resumes it):

    workflow.run                 vigil.run_id, vigil.workflow
      workflow.attempt           vigil.attempt; error status when the attempt failed
        workflow.step <name>     one per executed step (skipped finished steps: an event)
        workflow.breaker_rejected  the breaker refused the attempt without running it
      workflow.fallback          one per fallback tried (vigil.fallback)

While tracing is off `tracer()` is the no-op tracer: no span objects are recorded.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span, Status, StatusCode
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.common import RUN_TRANSITIONS, log_fields, tracer

if TYPE_CHECKING:
    from services.workflow._executor import Executor

__all__ = [
    "attempt_span",
    "breaker_rejected",
    "fallback_span",
    "record_transition",
    "run_span",
    "step_span",
    "watch_executor",
]

_BREAKER_VALUE = {"CLOSED": 0, "HALF_OPEN": 1, "OPEN": 2}


@contextlib.contextmanager
def _span(name: str, attributes: dict[str, Any]) -> Iterator[Span]:
    # record_exception/set_status_on_exception: a failed attempt or step shows as an error.
    with tracer().start_as_current_span(name, attributes=attributes) as span:
        yield span


@contextlib.contextmanager
def run_span(run_id: str, workflow: str) -> Iterator[None]:
    """The span of one run's execution; log lines inside carry run_id and workflow."""
    with (
        _span("workflow.run", {"vigil.run_id": run_id, "vigil.workflow": workflow}),
        log_fields(run_id=run_id, workflow=workflow),
    ):
        yield


def attempt_span(run_id: str, workflow: str, attempt: int) -> contextlib.AbstractContextManager[Span]:
    return _span(
        "workflow.attempt", {"vigil.run_id": run_id, "vigil.workflow": workflow, "vigil.attempt": attempt}
    )


def step_span(run_id: str, workflow: str, step: str) -> contextlib.AbstractContextManager[Span]:
    return _span(
        f"workflow.step {step}", {"vigil.run_id": run_id, "vigil.workflow": workflow, "vigil.step": step}
    )


def fallback_span(run_id: str, workflow: str, fallback: str) -> contextlib.AbstractContextManager[Span]:
    return _span(
        "workflow.fallback", {"vigil.run_id": run_id, "vigil.workflow": workflow, "vigil.fallback": fallback}
    )


def breaker_rejected(run_id: str, workflow: str, breaker: str, retry_after_s: float) -> None:
    """A zero-length span marking that the breaker refused an attempt."""
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


class _ExecutorCollector(Collector):
    """Breaker states, queue depth and runs in flight, read from the executors per scrape
    (nothing is updated on the request path). One per process; tests run several
    executors in one process, whose values are summed by name."""

    def __init__(self) -> None:
        self.executors: weakref.WeakSet[Executor] = weakref.WeakSet()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        breaker: dict[str, int] = {}
        queue: dict[str, int] = {}
        busy: dict[str, int] = {}
        for ex in list(self.executors):
            for name, b in list(ex._breakers.items()):
                breaker[name] = max(breaker.get(name, 0), _BREAKER_VALUE.get(b.state.value, -1))
            for name, bh in list(ex._bulkheads.items()):
                queue[name] = queue.get(name, 0) + max(0, bh.reserved - bh.running)
                busy[name] = busy.get(name, 0) + bh.running
        breakers = GaugeMetricFamily(
            "vigil_workflow_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            labels=["breaker"],
        )
        for name, value in breaker.items():
            breakers.add_metric([name], value)
        queued = GaugeMetricFamily(
            "vigil_workflow_queue_depth", "Accepted runs waiting for an executor slot.", labels=["workflow"]
        )
        running = GaugeMetricFamily(
            "vigil_workflow_runs_running", "Runs executing a handler now.", labels=["workflow"]
        )
        for name in queue:
            queued.add_metric([name], queue[name])
            running.add_metric([name], busy[name])
        yield from (breakers, queued, running)


_collector: _ExecutorCollector | None = None


def watch_executor(executor: Executor) -> None:
    """Report ``executor``'s breakers and queues on ``/metrics`` (for as long as it lives)."""
    global _collector
    if _collector is None:
        _collector = _ExecutorCollector()
        REGISTRY.register(_collector)
    _collector.executors.add(executor)
