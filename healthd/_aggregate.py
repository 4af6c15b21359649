"""Aggregation: per-check hysteresis, component status, system status, score and level.

Pure functions over frozen values; time enters only as an explicit ``now``.

Rules (ARCHITECTURE.md, "Health model"):
- A check is NOT_SERVING after ``failure_threshold`` consecutive failures (or one decisive
  event: a child exit, a broken Watch stream) and SERVING again after ``success_threshold``
  consecutive successes. Before any result it is UNKNOWN.
- A component's own status: NOT_SERVING if any check is, else UNKNOWN if any check is, else SERVING.
- Dependency-aware: a component whose hard dependency (``depends_on``, transitively) is not
  SERVING is reported DEPENDENCY_DOWN with the root cause named, not as its own failure.
- Components in maintenance or stopped by an operator are excluded from system status,
  score and level.
- A replicated component serves while one replica does; while fewer than its active
  replicas serve it is ``partial``: the system is DEGRADED (level at least DEGRADED).
- System: UNHEALTHY if a critical component is down (own failure or dependency), DEGRADED if
  any other component is down or any component is still UNKNOWN, else HEALTHY.
- Score 0-100: weighted mean (critical weight 3, other 1) of credit SERVING 1, UNKNOWN 0.5, down 0.
- Level: the worst ``level_when_down`` among down components (critical default RESTRICTED,
  non-critical DEGRADED); OFFLINE when every critical component is down. Levels worsen at
  once and improve at once; only while the level flaps (``level_flap_count`` improvements
  within ``level_flap_window_s``) must a better level hold for ``level_recovery_s`` first.
- The system is never HEALTHY at a level worse than NORMAL (a held level reads DEGRADED).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from healthd._config import ComponentConfig, HealthdConfig, Level
from healthd._types import CheckResult, Status
from services.common import new_run_refusal

CRITICAL_WEIGHT = 3
NORMAL_WEIGHT = 1


class SystemStatus(StrEnum):
    """Overall verdict over all components."""

    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    UNHEALTHY = "UNHEALTHY"


class Reason(StrEnum):
    """Why a component has its reported status."""

    OK = "OK"
    PENDING = "PENDING"
    """No verdict yet (no result, or hysteresis not yet reached)."""
    FAILING = "FAILING"
    """Its own checks fail."""
    DEPENDENCY_DOWN = "DEPENDENCY_DOWN"
    """A hard dependency is down; this component's own checks are not to blame."""
    MAINTENANCE = "MAINTENANCE"
    """Checks and healing paused by an operator."""
    STOPPED = "STOPPED"
    """Every replica stopped by an operator (ControlComponent STOP)."""


PAUSED = frozenset({Reason.MAINTENANCE, Reason.STOPPED})
"""Reasons that take a component out of system status, score and level: not failures."""


@dataclass(frozen=True)
class CheckState:
    """Hysteresis state of one check."""

    status: Status = Status.UNKNOWN
    successes: int = 0
    failures: int = 0
    last: CheckResult | None = None


def apply_result(
    state: CheckState, result: CheckResult, failure_threshold: int, success_threshold: int
) -> CheckState:
    """Fold one result into a check's hysteresis state.

    UNKNOWN results count as failures: a check that cannot tell is not evidence of health.
    """
    if result.ok:
        successes, failures = state.successes + 1, 0
        # From UNKNOWN one success is enough: hysteresis guards against flapping, not start-up.
        needed = 1 if state.status is Status.UNKNOWN else success_threshold
        status = Status.SERVING if successes >= needed else state.status
    else:
        successes, failures = 0, state.failures + 1
        down = result.decisive or failures >= failure_threshold
        status = Status.NOT_SERVING if down else state.status
    return CheckState(status, successes, failures, result)


def own_status(checks: list[CheckState]) -> Status:
    """A component's status from its checks alone."""
    if any(c.status is Status.NOT_SERVING for c in checks):
        return Status.NOT_SERVING
    if any(c.status is Status.UNKNOWN for c in checks):
        return Status.UNKNOWN
    return Status.SERVING


@dataclass(frozen=True)
class ComponentHealth:
    """What healthd reports for one component."""

    name: str
    critical: bool
    status: Status
    """Effective status: NOT_SERVING also when a dependency is down."""
    own: Status
    """Status from its own checks alone."""
    reason: Reason
    cause: str = ""
    """For DEPENDENCY_DOWN: the dependency at the root of the failure."""
    partial: bool = False
    """Serving, but fewer of its active replicas serve than run."""


@dataclass(frozen=True)
class SystemHealth:
    """The aggregated view served as ``""``, ``readiness`` and by GetSystemHealth."""

    status: SystemStatus
    score: int
    level: Level
    components: tuple[ComponentHealth, ...]
    level_without: Mapping[str, Level] = field(default_factory=dict)
    """For a component down by its own failure, the (better) level were it serving: what
    that component's own processes obey (`level_without`)."""

    @property
    def ready(self) -> bool:
        """Every critical component is SERVING and the level admits an ordinary StartRun:
        `new_run_refusal`, the rule the workflow service admits by, so ``readiness`` is SERVING
        exactly when a StartRun would be admitted.

        Paused components count by their own checks here: maintenance or an operator's stop
        keeps healthd from healing and blaming, but a stopped security service still refuses
        every StartRun, so readiness must not say SERVING while it is down."""
        serving = all(c.status is Status.SERVING for c in self.components if c.critical)
        return serving and new_run_refusal(self.level) is None


_REASON = {Status.SERVING: Reason.OK, Status.UNKNOWN: Reason.PENDING, Status.NOT_SERVING: Reason.FAILING}


def _down_root(
    name: str, config: HealthdConfig, own: dict[str, Status], maint: set[str] | frozenset[str]
) -> str | None:
    """The first hard dependency (depth-first) that is itself down for its own reasons."""
    for dep in config.component(name).depends_on:
        if dep in maint:
            continue  # an operator is working on it: don't blame dependents
        root = _down_root(dep, config, own, maint)
        if root is not None:
            return root
        if own[dep] is Status.NOT_SERVING:
            return dep
    return None


def component_health(
    config: HealthdConfig,
    own: dict[str, Status],
    maintenance: set[str],
    stopped: frozenset[str] = frozenset(),
    partial: frozenset[str] = frozenset(),
) -> tuple[ComponentHealth, ...]:
    """Effective health of every component, in config order (``stopped``: every replica
    stopped by an operator; ``partial``: serving with fewer replicas than active)."""
    out = []
    paused = maintenance | stopped
    for comp in config.components:
        status = own[comp.name]
        if comp.name in paused:
            reason = Reason.MAINTENANCE if comp.name in maintenance else Reason.STOPPED
            out.append(ComponentHealth(comp.name, comp.critical, status, status, reason))
            continue
        root = _down_root(comp.name, config, own, paused)
        if root is not None:
            out.append(
                ComponentHealth(
                    comp.name, comp.critical, Status.NOT_SERVING, status, Reason.DEPENDENCY_DOWN, root
                )
            )
            continue
        part = comp.name in partial and status is Status.SERVING
        out.append(ComponentHealth(comp.name, comp.critical, status, status, _REASON[status], partial=part))
    return tuple(out)


def _score(active: list[ComponentHealth]) -> int:
    credit = {Status.SERVING: 1.0, Status.UNKNOWN: 0.5, Status.NOT_SERVING: 0.0}
    total = sum(CRITICAL_WEIGHT if c.critical else NORMAL_WEIGHT for c in active)
    if total == 0:
        return 100
    got = sum((CRITICAL_WEIGHT if c.critical else NORMAL_WEIGHT) * credit[c.status] for c in active)
    return round(100 * got / total)


def target_level(config: HealthdConfig, comps: tuple[ComponentHealth, ...]) -> Level:
    """The degradation level the current component health calls for (before damping)."""
    active = [c for c in comps if c.reason not in PAUSED]
    down = [c for c in active if c.status is Status.NOT_SERVING]
    critical = [c for c in active if c.critical]
    if critical and all(c.status is Status.NOT_SERVING for c in critical):
        return Level.OFFLINE
    by_name: dict[str, ComponentConfig] = {c.name: c for c in config.components}
    floor = Level.DEGRADED if any(c.partial for c in active) else Level.NORMAL
    levels = [floor, *(by_name[c.name].level_when_down for c in down)]
    return max(levels)


def level_without(
    config: HealthdConfig,
    comps: tuple[ComponentHealth, ...],
    level: Level,
    damp: Callable[[Level], Level] | None = None,
) -> dict[str, Level]:
    """For each component down by its own failure whose recovery would improve ``level``: the
    level were its own checks passing, as the damper would publish it (``damp``: target ->
    published level; undamped when None).

    Why: a component's processes obey the published level, so a workflow replica restarted
    after a crash would refuse every run (OFFLINE, because *it* was down) until healthd's next
    check saw it SERVING, while its own readiness already said SERVING. A process that is
    answering is up; its own failure must not gate it. Every other failure still does, so the
    health is recomputed, not patched: a dependent reported DEPENDENCY_DOWN naming this
    component may also be down by its own checks or another dependency; a replicated component
    is partial (only the answering replica is known up); and a level the damper holds (the
    system flapping) is held here too. Never worse than ``level``."""
    own = {c.name: c.own for c in comps}
    maintenance = {c.name for c in comps if c.reason is Reason.MAINTENANCE}
    stopped = frozenset(c.name for c in comps if c.reason is Reason.STOPPED)
    partial = {c.name for c in comps if c.partial}
    out: dict[str, Level] = {}
    for comp in comps:
        if comp.reason is not Reason.FAILING:
            continue
        replicated = {comp.name} if config.component(comp.name).replicas > 1 else set()
        healed = component_health(
            config, {**own, comp.name: Status.SERVING}, maintenance, stopped, frozenset(partial | replicated)
        )
        target = target_level(config, healed)
        better = min(level, target if damp is None else damp(target))
        if better < level:
            out[comp.name] = better
    return out


def system_health(
    config: HealthdConfig,
    comps: tuple[ComponentHealth, ...],
    level: Level,
    damp: Callable[[Level], Level] | None = None,
) -> SystemHealth:
    """System status and score for component health; ``level`` comes from `LevelDamper`, and
    ``damp`` is what it would publish for another target (see `level_without`)."""
    active = [c for c in comps if c.reason not in PAUSED]
    if any(c.critical and c.status is Status.NOT_SERVING for c in active):
        status = SystemStatus.UNHEALTHY
    elif any(c.status is not Status.SERVING or c.partial for c in active) or level > Level.NORMAL:
        # A level held back while flapping settles is not health: never "HEALTHY level=OFFLINE".
        status = SystemStatus.DEGRADED
    else:
        status = SystemStatus.HEALTHY
    return SystemHealth(status, _score(active), level, comps, level_without(config, comps, level, damp))


@dataclass(frozen=True)
class LevelDamper:
    """Degradation level that follows the components, damped only while they flap.

    Worse levels apply at once. A better level applies at once too, unless the level
    already improved ``flap_count`` times within ``flap_window_s`` (the system is flapping):
    then the better level must hold for ``hold_s`` first. So a single recovery (a restart
    after a kill) reopens the system the moment its components serve again.

    Invariants: ``pending`` is set only while a better level than ``level`` is being held,
    and ``pending_since`` is when that better level was first seen; ``recoveries`` holds
    the times the level improved, newest last, none older than the flap window.
    """

    level: Level = Level.NORMAL
    pending: Level | None = None
    pending_since: float = 0.0
    recoveries: tuple[float, ...] = ()

    def step(
        self, target: Level, now: float, hold_s: float, *, flap_count: int = 3, flap_window_s: float = 60.0
    ) -> LevelDamper:
        """Advance toward ``target`` at time ``now``."""
        recent = tuple(t for t in self.recoveries if t > now - flap_window_s)
        if target >= self.level:
            # Same or worse: take it immediately and forget any pending improvement.
            return LevelDamper(target, recoveries=recent)
        if self.pending is None and len(recent) < flap_count:
            return LevelDamper(target, recoveries=(*recent, now))  # not flapping: recover now
        # Flapping: hold the better level; the level reached is the worst target seen while holding.
        if self.pending is None:
            pending, since = target, now
        else:
            pending, since = max(self.pending, target), self.pending_since
        if now - since >= hold_s:
            return LevelDamper(pending, recoveries=(*recent, now))
        return LevelDamper(self.level, pending, since, recent)

    @property
    def holding(self) -> bool:
        """A better level is being held back (the system is recovering from flapping)."""
        return self.pending is not None
