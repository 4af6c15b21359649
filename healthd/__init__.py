"""healthd: periodic checks, auto-healing and aggregated health over grpc.health.v1.

The read API for servers and dashboards (``Daemon.engine``) is `HealthEngine.snapshot()` (a
frozen `Snapshot`; ``as_dict()`` for JSON), `HealthEngine.statuses()` (grpc.health.v1 name ->
`Status`) and `HealthEngine.subscribe()` (live `Event`s; a slow subscriber loses its oldest
events and never blocks healthd). ``HealthdConfig.http`` holds the dashboard's host and port.
"""

from healthd._aggregate import ComponentHealth, LevelDamper, Reason, SystemHealth, SystemStatus
from healthd._config import (
    ComponentConfig,
    HealingConfig,
    HealthdConfig,
    Level,
    Mode,
    ProcessConfig,
)
from healthd._daemon import Daemon, serve
from healthd._engine import LIVENESS, OVERALL, READINESS, HealthEngine
from healthd._events import Event, EventKind, Subscription
from healthd._healing import HealState
from healthd._scheduler import Clock, FakeClock, LoopClock
from healthd._snapshot import CheckView, ComponentView, Snapshot
from healthd._types import CheckResult, Status

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
    "FakeClock",
    "HealState",
    "HealingConfig",
    "HealthEngine",
    "HealthdConfig",
    "Level",
    "LevelDamper",
    "LoopClock",
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
