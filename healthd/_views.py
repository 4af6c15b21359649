"""Engine state -> `ComponentView`: a component summarised over its replicas (units).

With one replica the view is that unit's (as before replicas existed). With several, the
component shows the unit that needs attention most (FATAL, then BACKOFF, HEALING, STARTING,
SUSPECT; else the first), restarts summed, and every replica in ``replicas``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from healthd._aggregate import CheckState, ComponentHealth, own_status
from healthd._config import ComponentConfig
from healthd._healing import HealMachine, HealState
from healthd._replicas import Unit
from healthd._snapshot import CheckView, ComponentView, ReplicaView
from healthd._types import Status

_ATTENTION = [
    HealState.FATAL,
    HealState.BACKOFF,
    HealState.HEALING,
    HealState.STARTING,
    HealState.SUSPECT,
    HealState.STOPPED,
    HealState.MAINTENANCE,
    HealState.HEALTHY,
]


def _message(machine: HealMachine, checks: Sequence[CheckState], unit: Unit) -> str:
    failing = next((c.last.message for c in checks if c.last is not None and not c.last.ok), "")
    if machine.reason or failing:
        return machine.reason or failing
    return unit.child.liveness()[1] if unit.child is not None else ""


def _replica(unit: Unit, machine: HealMachine, checks: Sequence[CheckState]) -> ReplicaView:
    child = unit.child
    assert child is not None
    return ReplicaView(
        unit.replica,
        child.pid if child.running else None,
        own_status(list(checks)),
        machine.state,
        child.restarts,
        _message(machine, checks, unit),
        tuple(child.output.tail()),
        unit.health_port,
    )


def component_view(
    health: ComponentHealth,
    cfg: ComponentConfig,
    units: Sequence[Unit],
    machines: Mapping[str, HealMachine],
    checks: Mapping[str, list[CheckState]],
    last_check: Mapping[str, tuple[float, float]],
    maintenance: bool,
    now: float,
) -> ComponentView:
    """The reader's view of one component at clock time ``now``."""
    worst = min(units, key=lambda u: _ATTENTION.index(machines[u.name].state))
    machine = machines[worst.name]
    states = checks[worst.name]
    cviews = tuple(
        CheckView(c.kind, st.status, st.last.message, st.last.latency_s)
        if st.last is not None
        else CheckView(c.kind, st.status, "", 0.0)
        for c, st in zip(cfg.checks, states, strict=True)
    )
    backoff = machine.state is HealState.BACKOFF
    replicas = tuple(_replica(u, machines[u.name], checks[u.name]) for u in units if u.child is not None)
    serving = sum(own_status(checks[u.name]) is Status.SERVING for u in units)
    latest = max((last_check[u.name] for u in units if u.name in last_check), default=(0.0, 0.0))
    child = worst.child
    running = next((u.child.pid for u in units if u.child is not None and u.child.running), None)
    if len(units) > 1:
        output = tuple(f"[{worst.replica}] {line}" for line in child.output.tail()) if child else ()
    else:
        output = tuple(child.output.tail()) if child is not None else ()
    return ComponentView(
        health,
        machine.state,
        machine.reason,
        len(machine.attempts),
        machine.last_delay if backoff else 0.0,
        max(0.0, machine.until - now) if backoff else 0.0,
        maintenance,
        child.pid if child is not None and len(units) == 1 else running,
        sum(u.child.restarts for u in units if u.child is not None),
        cviews,
        max(s.failures for s in states),
        min(s.successes for s in states),
        *latest,
        replicas_configured=len(units),
        replicas_serving=serving,
        replicas=replicas,
        last_output=output,
    )
