"""What the dashboard shows, as one JSON-ready dict, plus change notification for SSE.

The model reads healthd's frozen `Snapshot`, its event history and the alert engine; it
only adds what those do not keep: a short latency history per component (sparklines).
Readers never see a half-updated view: `state()` builds a fresh dict from one snapshot.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from healthd._snapshot import ComponentView, Snapshot

if TYPE_CHECKING:
    from healthd._engine import HealthEngine
    from healthd.alerts import Alerting

__all__ = ["DashboardModel"]

HISTORY = 60  # latency points per component (a minute at 1 s check intervals)
EVENTS = 60  # recent events shown


class DashboardModel:
    """Dashboard data for one healthd.

    Args:
        engine: The running health engine.
        alerting: The alert loop (its alerts are shown), or None.
        clock: Wall clock (for ``generated_at``).
    """

    def __init__(
        self,
        engine: HealthEngine,
        alerting: Alerting | None = None,
        *,
        title: str = "Vigil",
        runs_view: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.alerting = alerting
        self.title = title
        self.runs_view = runs_view
        self._clock = clock
        self._history: dict[str, deque[tuple[float, float, str]]] = {}
        self._seen: dict[str, float] = {}
        # One Event per connected SSE client; `notify` sets them all. Only touched on the loop.
        self._waiters: set[asyncio.Event] = set()
        self.version = 0
        engine.add_listener(self._on_snapshot)

    # --- change notification --------------------------------------------------------
    def subscribe(self) -> asyncio.Event:
        ev = asyncio.Event()
        self._waiters.add(ev)
        return ev

    def unsubscribe(self, ev: asyncio.Event) -> None:
        self._waiters.discard(ev)

    def notify(self) -> None:
        self.version += 1
        for ev in self._waiters:
            ev.set()

    def _on_snapshot(self, snap: Snapshot) -> None:
        self.sample(snap)
        self.notify()

    def sample(self, snap: Snapshot | None = None) -> bool:
        """Record each component's latest check latency once; True if anything was new."""
        snap = snap or self.engine.snapshot()
        new = False
        for view in snap.components:
            name = view.health.name
            if view.last_check_at and self._seen.get(name) != view.last_check_at:
                self._seen[name] = view.last_check_at
                latency = max((c.latency_s for c in view.checks), default=0.0)
                hist = self._history.setdefault(name, deque(maxlen=HISTORY))
                hist.append((view.last_check_at, round(latency * 1000, 2), view.health.status.value))
                new = True
        return new

    # --- the view -----------------------------------------------------------------------
    def _component(self, view: ComponentView) -> dict[str, Any]:
        h = view.health
        return {
            "name": h.name,
            "critical": h.critical,
            "status": h.status.value,
            "own": h.own.value,
            "reason": h.reason.value,
            "cause": h.cause,
            "heal_state": view.heal_state.value,
            "heal_reason": view.heal_reason,
            "heal_attempts": view.heal_attempts,
            "backoff_left_s": round(view.backoff_left_s, 1),
            "maintenance": view.maintenance,
            "pid": view.pid,
            "restarts": view.restarts,
            "last_check_at": view.last_check_at,
            "checks": [
                {
                    "kind": c.kind,
                    "status": c.status.value,
                    "message": c.message,
                    "latency_ms": round(c.latency_s * 1000, 2),
                }
                for c in view.checks
            ],
            "latency": [list(p) for p in self._history.get(h.name, ())],
            "last_error": _last_error(view),
            "replicas_configured": view.replicas_configured,
            "replicas_serving": view.replicas_serving,
            "replicas": [
                {
                    "replica": r.replica,
                    "pid": r.pid,
                    "status": r.status.value,
                    "heal_state": r.heal_state.value,
                    "restarts": r.restarts,
                    "message": r.message,
                    "last_output": list(r.last_output),
                }
                for r in view.replicas
            ],
            "last_output": list(view.last_output),
        }

    def state(self) -> dict[str, Any]:
        """Everything the page shows (also the ``/api/health`` JSON export)."""
        snap = self.engine.snapshot()
        system = snap.system
        events = self.engine.events.since(0, limit=EVENTS)
        alerts = self.alerting.alerts() if self.alerting is not None else []
        return {
            "title": self.title,
            "runs_view": self.runs_view,
            "generated_at": self._clock(),
            "system": {
                "status": system.status.value,
                "score": system.score,
                "level": system.level.name,
                "ready": system.ready,
                "liveness": snap.liveness.value,
                "liveness_reason": snap.liveness_reason,
                "readiness": snap.readiness.value,
                "shutting_down": snap.shutting_down,
            },
            "components": [self._component(v) for v in snap.components],
            "events": [
                {
                    "seq": e.seq,
                    "at": e.at,
                    "kind": e.kind.value,
                    "component": e.component,
                    "message": e.message,
                    "old": e.old,
                    "new": e.new,
                }
                for e in reversed(events)
            ],
            "alerts": [a.as_dict() for a in alerts],
        }


def _last_error(view: ComponentView) -> str:
    """Why a component that is not SERVING fails: its failing check's latest message (a card
    must not show the last good latency of a dead service), else the healing or cause text."""
    if view.health.status.value == "SERVING":
        return ""
    for c in view.checks:
        if c.status.value != "SERVING" and c.message:
            return f"{c.kind}: {c.message}"
    return view.heal_reason or view.health.cause
