"""Frozen read-only views of healthd's state, for servers, dashboards and the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from healthd._aggregate import ComponentHealth, SystemHealth
from healthd._healing import HealState
from healthd._types import Status


@dataclass(frozen=True)
class CheckView:
    """One check as shown to readers."""

    kind: str
    status: Status
    message: str
    latency_s: float


@dataclass(frozen=True)
class ReplicaView:
    """One replica (supervised process) of a component."""

    replica: int
    pid: int | None
    status: Status
    heal_state: HealState
    restarts: int
    message: str
    last_output: tuple[str, ...]
    health_port: int | None


@dataclass(frozen=True)
class ComponentView:
    """One component as shown to readers."""

    health: ComponentHealth
    heal_state: HealState
    heal_reason: str
    heal_attempts: int
    backoff_s: float
    """Length of the current backoff (0 unless in BACKOFF)."""
    backoff_left_s: float
    """Time until the next heal attempt (0 unless in BACKOFF)."""
    maintenance: bool
    pid: int | None
    restarts: int
    checks: tuple[CheckView, ...]
    failures: int
    """Consecutive failures of its worst check."""
    successes: int
    """Consecutive successes of its least proven check."""
    last_check_at: float
    """Wall-clock time of its latest check result (0 before any)."""
    last_latency_s: float
    """Latency of that latest check result."""
    replicas_configured: int = 1
    replicas_serving: int = 0
    replicas: tuple[ReplicaView, ...] = ()
    """Each supervised process (empty without one)."""
    last_output: tuple[str, ...] = ()
    """The last output lines of its process (of the replica that last failed, prefixed)."""


@dataclass(frozen=True)
class Snapshot:
    """Everything a reader needs, as one consistent frozen value."""

    system: SystemHealth
    components: tuple[ComponentView, ...]
    liveness: Status
    liveness_reason: str
    readiness: Status
    shutting_down: bool

    def as_dict(self) -> dict[str, Any]:
        """Plain nested dicts, lists, numbers and strings (enums are str): JSON-ready export."""
        return asdict(self)
