"""Domain values -> vigil.healthd.v1 messages (the only place that knows both)."""

from __future__ import annotations

import time

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from healthd._config import HealthdConfig
from healthd._events import Event, EventKind
from healthd._healing import HealState
from healthd._snapshot import ComponentView, Snapshot
from healthd._types import Status
from vigil.healthd.v1 import healthd_pb2 as _pb

_STATUS = {
    Status.SERVING: _pb.COMPONENT_STATUS_SERVING,
    Status.NOT_SERVING: _pb.COMPONENT_STATUS_NOT_SERVING,
    Status.UNKNOWN: _pb.COMPONENT_STATUS_UNKNOWN,
}
# STARTING (healed, not yet passing its checks) is part of the heal in the contract's terms.
_HEAL = {
    HealState.HEALTHY: _pb.HEALING_STATE_HEALTHY,
    HealState.SUSPECT: _pb.HEALING_STATE_SUSPECT,
    HealState.HEALING: _pb.HEALING_STATE_HEALING,
    HealState.STARTING: _pb.HEALING_STATE_HEALING,
    HealState.BACKOFF: _pb.HEALING_STATE_BACKOFF,
    HealState.FATAL: _pb.HEALING_STATE_FATAL,
    HealState.MAINTENANCE: _pb.HEALING_STATE_MAINTENANCE,
    HealState.STOPPED: _pb.HEALING_STATE_STOPPED,
}


def timestamp(seconds: float) -> Timestamp:
    """Timestamp message for a wall-clock time in seconds."""
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


_ts = timestamp


def _dur(seconds: float) -> Duration:
    out = Duration()
    out.FromNanoseconds(int(seconds * 1e9))
    return out


def event_type(event: Event) -> int:
    """The contract's EventType for a domain event."""
    kind = event.kind
    if kind is EventKind.HEAL_RESULT:
        return _pb.EVENT_TYPE_HEAL_SUCCEEDED if event.new == "ok" else _pb.EVENT_TYPE_HEAL_FAILED
    if kind is EventKind.PROCESS:
        return (
            _pb.EVENT_TYPE_PROCESS_STARTED
            if event.message.startswith("started")
            else _pb.EVENT_TYPE_PROCESS_EXITED
        )
    return {
        EventKind.STATUS: _pb.EVENT_TYPE_COMPONENT_STATUS_CHANGED,
        EventKind.SYSTEM: _pb.EVENT_TYPE_SYSTEM_STATUS_CHANGED,
        EventKind.LIVENESS: _pb.EVENT_TYPE_SYSTEM_STATUS_CHANGED,
        EventKind.HEAL_STATE: _pb.EVENT_TYPE_HEALING_STATE_CHANGED,
        EventKind.HEAL_ATTEMPT: _pb.EVENT_TYPE_HEAL_STARTED,
        EventKind.ESCALATION: _pb.EVENT_TYPE_ESCALATED,
        EventKind.MAINTENANCE: _pb.EVENT_TYPE_MAINTENANCE_CHANGED,
    }[kind]


def event_pb(event: Event) -> _pb.Event:
    """Event message."""
    return _pb.Event(
        seq=event.seq,
        time=_ts(event.at),
        component=event.component,
        type=event_type(event),  # type: ignore[arg-type]
        message=event.message,
        from_value=event.old,
        to_value=event.new,
    )


def component_pb(view: ComponentView, config: HealthdConfig, at: float) -> _pb.ComponentHealth:
    """ComponentHealth message; check and heal times are shown relative to ``at`` (wall clock)."""
    cfg = config.component(view.health.name)
    checks = [
        _pb.CheckResult(
            name=name, kind=c.kind, status=_STATUS[c.status], latency=_dur(c.latency_s), message=c.message
        )
        for name, c in zip(cfg.check_names(), view.checks, strict=True)
    ]
    message = view.heal_reason or next((c.message for c in view.checks if c.status is not Status.SERVING), "")
    if view.replicas_configured > 1 and view.replicas_serving < view.replicas_configured:
        serving = f"{view.replicas_serving}/{view.replicas_configured} replicas serving"
        message = f"{serving}: {message}" if message else serving
    msg = _pb.ComponentHealth(
        name=view.health.name,
        status=_STATUS[view.health.status],
        critical=view.health.critical,
        depends_on=cfg.depends_on,
        blocked_by=view.health.cause,
        consecutive_failures=view.failures,
        consecutive_successes=view.successes,
        healing_state=_HEAL[view.heal_state],
        heal_attempts=view.heal_attempts,
        message=message,
        maintenance=view.maintenance,
        checks=checks,
        pid=view.pid or 0,
        restarts=view.restarts,
        last_output=view.last_output,
        replicas_configured=view.replicas_configured,
        replicas_serving=view.replicas_serving,
        replicas=[
            _pb.ReplicaHealth(
                replica=r.replica,
                pid=r.pid or 0,
                status=_STATUS[r.status],
                healing_state=_HEAL[r.heal_state],
                restarts=r.restarts,
                message=r.message,
                last_output=r.last_output,
                health_port=r.health_port or 0,
            )
            for r in view.replicas
        ],
    )
    if view.last_check_at:
        msg.last_check_time.CopyFrom(_ts(view.last_check_at))
        msg.last_latency.CopyFrom(_dur(view.last_latency_s))
    if view.heal_state is HealState.BACKOFF:
        msg.next_heal_time.CopyFrom(_ts(at + view.backoff_left_s))
    return msg


_SYSTEM = {"HEALTHY": _pb.SYSTEM_STATUS_HEALTHY, "DEGRADED": _pb.SYSTEM_STATUS_DEGRADED}


def system_pb(snap: Snapshot, config: HealthdConfig) -> _pb.SystemHealth:
    """SystemHealth message for a snapshot."""
    now = time.time()
    system = snap.system
    return _pb.SystemHealth(
        status=_SYSTEM.get(system.status.value, _pb.SYSTEM_STATUS_UNHEALTHY),
        degradation_level=system.level.to_proto(),
        score=system.score,
        components=[component_pb(v, config, now) for v in snap.components],
        time=_ts(now),
        live=snap.liveness is Status.SERVING,
        ready=snap.readiness is Status.SERVING,
        level_without={name: level.to_proto() for name, level in system.level_without.items()},
    )
