"""Prometheus metrics of the workflow service, read from the executor's own counters.

A collector (not separately incremented metrics) so the numbers in ``/metrics`` and in
ListWorkflows can never disagree: both read `Executor.catalogue` (and `Executor.stats`).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from services.workflow._degradation import DegradationGate
from services.workflow._executor import Executor
from services.workflow._policies import BreakerState, CircuitBreaker

__all__ = ["WorkflowCollector"]

_BREAKER_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class WorkflowCollector(Collector):
    def __init__(
        self, executor: Executor, gate: DegradationGate, dependencies: dict[str, CircuitBreaker] | None = None
    ) -> None:
        self._ex, self._gate, self._deps = executor, gate, dependencies or {}

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        ex = self._ex
        runs = CounterMetricFamily(
            "vigil_workflow_runs", "Run executions by workflow and outcome", labels=["workflow", "outcome"]
        )
        errors = CounterMetricFamily(
            "vigil_workflow_errors",
            "Failures by workflow and category (refusals included)",
            labels=["workflow", "category"],
        )
        for name, stats in sorted(ex.stats.items()):
            runs.add_metric([name, "started"], stats.started)
            runs.add_metric([name, "succeeded"], stats.succeeded)
            runs.add_metric([name, "failed"], stats.failed)
            runs.add_metric([name, "lease_lost"], stats.lease_lost)
            for category, count in sorted(stats.errors_by_category.items()):
                errors.add_metric([name, category], count)
        breaker = GaugeMetricFamily(
            "vigil_workflow_breaker_state",
            "Circuit breaker state (0 closed, 1 half-open, 2 open)",
            labels=["workflow"],
        )
        in_flight = GaugeMetricFamily("vigil_workflow_in_flight", "Runs executing now", labels=["workflow"])
        queued = GaugeMetricFamily(
            "vigil_workflow_queued", "Accepted runs waiting for a bulkhead slot", labels=["workflow"]
        )
        for entry in ex.catalogue():
            breaker.add_metric([entry.name], _BREAKER_VALUE[entry.breaker])
            in_flight.add_metric([entry.name], entry.load.in_flight)
            queued.add_metric([entry.name], entry.load.queued)
        level = GaugeMetricFamily(
            "vigil_workflow_degradation_level", "Effective degradation level (0 NORMAL .. 4 OFFLINE)"
        )
        level.add_metric([], int(self._gate.level))
        deps = GaugeMetricFamily(
            "vigil_workflow_dependency_breaker_state",
            "Breaker of a dependency (0 closed, 1 half-open, 2 open)",
            labels=["dependency"],
        )
        for name, dep in sorted(self._deps.items()):
            deps.add_metric([name], _BREAKER_VALUE[dep.state])
        yield from (runs, errors, breaker, in_flight, queued, level, deps)
