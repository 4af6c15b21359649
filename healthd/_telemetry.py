"""healthd's traces and metrics: one span per check run and per heal action, check
latency/status histograms and gauges, heal attempts by outcome, component up gauges.

Common tools do not trace health checks; here a check that calls a service over gRPC
becomes the parent of that call's CLIENT span, so a slow probe can be followed into
the service it probed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from prometheus_client import Counter, Gauge, Histogram

from healthd._snapshot import Snapshot
from healthd._types import CheckResult
from healthd._types import Status as Health
from services.common import LATENCY_BUCKETS, tracer

__all__ = ["check_span", "heal_span", "healer_kind", "observe_snapshot"]

CHECK_SECONDS = Histogram(
    "vigil_healthd_check_seconds",
    "Duration of each health check.",
    ["component", "check"],
    buckets=LATENCY_BUCKETS,
)
CHECK_STATUS = Gauge(
    "vigil_healthd_check_status",
    "Last result of a check: 1 serving, 0 not serving, -1 unknown.",
    ["component", "check"],
)
COMPONENT_UP = Gauge("vigil_healthd_component_up", "1 while a component is SERVING, else 0.", ["component"])
HEAL_ATTEMPTS = Counter(
    "vigil_healthd_heal_attempts_total", "Heal actions tried, by outcome.", ["component", "action", "result"]
)

_STATUS_VALUE = {Health.SERVING: 1, Health.NOT_SERVING: 0, Health.UNKNOWN: -1}


@contextlib.contextmanager
def check_span(component: str, check: str, kind: str) -> Iterator[_CheckObserver]:
    """Span ``healthd.check`` around one run of a check; call ``.result(r)`` with its outcome."""
    attrs = {"vigil.component": component, "vigil.check": check, "vigil.check.kind": kind}
    with tracer().start_as_current_span("healthd.check", kind=SpanKind.INTERNAL, attributes=attrs) as span:
        yield _CheckObserver(span, component, check)


class _CheckObserver:
    __slots__ = ("_check", "_component", "_span")

    def __init__(self, span: Span, component: str, check: str) -> None:
        self._span, self._component, self._check = span, component, check

    def result(self, result: CheckResult) -> None:
        CHECK_SECONDS.labels(self._component, self._check).observe(result.latency_s)
        CHECK_STATUS.labels(self._component, self._check).set(_STATUS_VALUE.get(result.status, -1))
        span = self._span
        if span.is_recording():
            span.set_attribute("vigil.check.status", result.status.value)
            span.set_attribute("vigil.check.latency_s", result.latency_s)
            if result.message:
                span.set_attribute("vigil.check.message", result.message[:500])
            if result.status is Health.NOT_SERVING:
                span.set_status(Status(StatusCode.ERROR, result.message[:200]))


def healer_kind(healer: Any) -> str:
    """``restart`` / ``command`` / ``admin_rpc`` from the healer's class name."""
    name = type(healer).__name__.removesuffix("Healer")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_").replace("_r_p_c", "_rpc")


@contextlib.contextmanager
def heal_span(component: str, action: str, attempt: int) -> Iterator[Span]:
    """Span ``healthd.heal`` around one heal action; counts it by outcome (ok / failed)."""
    attrs: dict[str, str | int] = {
        "vigil.component": component,
        "vigil.heal.action": action,
        "vigil.heal.attempt": attempt,
    }
    t0 = time.perf_counter()
    with tracer().start_as_current_span("healthd.heal", attributes=attrs) as span:
        try:
            yield span
        except Exception as exc:
            HEAL_ATTEMPTS.labels(component, action, "failed").inc()
            span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
            raise
        HEAL_ATTEMPTS.labels(component, action, "ok").inc()
        span.set_attribute("vigil.heal.seconds", time.perf_counter() - t0)


def observe_snapshot(snap: Snapshot) -> None:
    """Engine listener: ``vigil_healthd_component_up`` follows every re-evaluation."""
    for view in snap.components:
        COMPONENT_UP.labels(view.health.name).set(1 if view.health.status is Health.SERVING else 0)
