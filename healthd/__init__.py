"""healthd: periodic checks, auto-healing and aggregated health over grpc.health.v1.

The read API for servers and dashboards (``Daemon.engine``) is `HealthEngine.snapshot()` (a
frozen `Snapshot`; ``as_dict()`` for JSON), `HealthEngine.statuses()` (grpc.health.v1 name ->
`Status`) and `HealthEngine.subscribe()` (live `Event`s; a slow subscriber loses its oldest
events and never blocks healthd). ``HealthdConfig.http`` holds the dashboard's host and port.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Names resolve on first use, so `healthd probe` (a Kubernetes exec probe) does not pay for
# importing the daemon, pydantic models and the security package at every run.
_EXPORTS = {
    "CheckResult": "healthd._types",
    "CheckView": "healthd._snapshot",
    "Clock": "services.common._clock",
    "ComponentConfig": "healthd._config",
    "ComponentHealth": "healthd._aggregate",
    "ComponentView": "healthd._snapshot",
    "Daemon": "healthd._daemon",
    "Event": "healthd._events",
    "EventKind": "healthd._events",
    "HealState": "healthd._healing",
    "HealingConfig": "healthd._config",
    "HealthEngine": "healthd._engine",
    "HealthdConfig": "healthd._config",
    "LIVENESS": "healthd._engine",
    "Level": "healthd._config",
    "LevelDamper": "healthd._aggregate",
    "Mode": "healthd._config",
    "OVERALL": "healthd._engine",
    "ProcessConfig": "healthd._config",
    "READINESS": "healthd._engine",
    "Reason": "healthd._aggregate",
    "Snapshot": "healthd._snapshot",
    "Status": "healthd._types",
    "Subscription": "healthd._events",
    "SystemHealth": "healthd._aggregate",
    "SystemStatus": "healthd._aggregate",
    "serve": "healthd._daemon",
}

__all__ = [
    "LIVENESS",
    "OVERALL",
    "READINESS",
    "CheckResult",
    "CheckView",
    "Clock",
    "ComponentConfig",
    "ComponentHealth",
    "ComponentView",
    "Daemon",
    "Event",
    "EventKind",
    "HealState",
    "HealingConfig",
    "HealthEngine",
    "HealthdConfig",
    "Level",
    "LevelDamper",
    "Mode",
    "ProcessConfig",
    "Reason",
    "Snapshot",
    "Status",
    "Subscription",
    "SystemHealth",
    "SystemStatus",
    "serve",
]

if TYPE_CHECKING:
    from healthd._aggregate import ComponentHealth, LevelDamper, Reason, SystemHealth, SystemStatus
    from healthd._config import ComponentConfig, HealingConfig, HealthdConfig, Level, Mode, ProcessConfig
    from healthd._daemon import Daemon, serve
    from healthd._engine import LIVENESS, OVERALL, READINESS, HealthEngine
    from healthd._events import Event, EventKind, Subscription
    from healthd._healing import HealState
    from healthd._snapshot import CheckView, ComponentView, Snapshot
    from healthd._types import CheckResult, Status
    from services.common import Clock


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
