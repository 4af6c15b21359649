"""Healing: one explicit state machine per component (in the spirit of supervisord's states).

``transition(machine, event, now=..., policy=..., rng=...)`` is the only way a machine changes;
it returns the new machine and the actions the driver must perform. Every heal attempt inside
the sliding window counts (successful or not), so a flapping component is damped: each
further heal waits exponentially longer, and too many in the window end in FATAL.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from enum import StrEnum

from healthd._config import HealingConfig


class HealState(StrEnum):
    """Where a component is in its healing life cycle."""

    HEALTHY = "HEALTHY"
    SUSPECT = "SUSPECT"
    """A check failed (below threshold), a dependency is down, or no healing is configured."""
    HEALING = "HEALING"
    """A heal action (restart, command, admin RPC) is running."""
    STARTING = "STARTING"
    """The action finished; the component must pass its checks before ``deadline``."""
    BACKOFF = "BACKOFF"
    """Waiting until ``until`` before the next heal attempt."""
    FATAL = "FATAL"
    """Too many failed heals in the window: escalated, no more automatic heals."""
    MAINTENANCE = "MAINTENANCE"
    """An operator paused checks and healing."""
    STOPPED = "STOPPED"
    """An operator stopped the process: not healed, not a failure, until started again."""


class HealEvent(StrEnum):
    """Inputs to the machine."""

    SAMPLE_FAILED = "SAMPLE_FAILED"
    """A failing result that does not (yet) make the component down, or its dependency is down."""
    DOWN = "DOWN"
    """The component itself is down (threshold reached or a decisive death event)."""
    DIED = "DIED"
    """A decisive death event (child exit, Watch break); also DOWN, and fails a STARTING heal."""
    UP = "UP"
    """The component passes its checks."""
    HEAL_DONE = "HEAL_DONE"
    """The heal action completed (child respawned, command exited 0, RPC returned OK)."""
    HEAL_ERROR = "HEAL_ERROR"
    """The heal action itself failed."""
    DEPENDENCY_DOWN = "DEPENDENCY_DOWN"
    """As a heal was to start, a hard dependency's checks (run just then) failed: it is the cause."""
    DEPENDENCY_UP = "DEPENDENCY_UP"
    """The hard dependency that was down serves again while the component itself still fails."""
    TICK = "TICK"
    """Time passed: backoff or start deadline may have expired."""
    STARTED = "STARTED"
    """healthd just started the component (or itself): it must pass its checks by the deadline."""
    MANUAL_HEAL = "MANUAL_HEAL"
    """An operator asked for a heal (does not count against the window)."""
    MAINTENANCE_ON = "MAINTENANCE_ON"
    MAINTENANCE_OFF = "MAINTENANCE_OFF"
    PERMANENT = "PERMANENT"
    """The process exited with the config/usage code before ever serving: restarting cannot help."""
    STOP = "STOP"
    """An operator stopped the process."""
    START = "START"
    """An operator started the process (from STOPPED or FATAL)."""


class Action(StrEnum):
    """Side effects the driver performs after a transition."""

    HEAL = "HEAL"
    ESCALATE = "ESCALATE"
    CLEAR_ESCALATION = "CLEAR_ESCALATION"
    RESET_CHECKS = "RESET_CHECKS"
    """Restart the checks' success/failure streaks so stale results don't judge a fresh start."""


@dataclass(frozen=True)
class HealMachine:
    """State of one component's healing.

    Invariants: ``attempts`` holds the times of automatic heals still inside the window, oldest
    first; ``until`` is meaningful only in BACKOFF and ``deadline`` only in STARTING.
    """

    state: HealState = HealState.HEALTHY
    since: float = 0.0
    attempts: tuple[float, ...] = ()
    until: float = 0.0
    deadline: float = 0.0
    last_delay: float = 0.0
    reason: str = ""
    escalated: bool = False
    before_maintenance: HealState | None = field(default=None)


def backoff_delay(attempts_in_window: int, policy: HealingConfig, rng: random.Random) -> float:
    """Delay before heal number ``attempts_in_window + 1``: 0 for the first, then exponential.

    base * 2**(n-1), capped, times a random factor in [1 - jitter, 1 + jitter] (the cap also
    bounds the jittered value so a cap is a promise).
    """
    if attempts_in_window == 0:
        return 0.0
    raw = min(policy.backoff_cap_s, policy.backoff_base_s * 2 ** (attempts_in_window - 1))
    factor = 1 + rng.uniform(-policy.backoff_jitter, policy.backoff_jitter)
    return min(policy.backoff_cap_s, raw * factor)


def _prune(attempts: tuple[float, ...], now: float, window_s: float) -> tuple[float, ...]:
    return tuple(t for t in attempts if now - t < window_s)


def _go(m: HealMachine, state: HealState, now: float, reason: str, **kw: object) -> HealMachine:
    return replace(m, state=state, since=now, reason=reason, **kw)  # type: ignore[arg-type]


def _schedule_heal(
    m: HealMachine, now: float, policy: HealingConfig, rng: random.Random, reason: str
) -> tuple[HealMachine, list[Action]]:
    """Heal now, back off, or give up: the shared decision after a failure."""
    attempts = _prune(m.attempts, now, policy.window_s)
    if policy.action == "none":
        return _go(m, HealState.SUSPECT, now, f"{reason} (no healing configured)", attempts=attempts), []
    if len(attempts) >= policy.max_attempts:
        fatal = _go(m, HealState.FATAL, now, f"{len(attempts)} heals in {policy.window_s:g}s; last: {reason}")
        return replace(fatal, attempts=attempts, escalated=True), [Action.ESCALATE]
    delay = backoff_delay(len(attempts), policy, rng)
    if delay <= 0:
        return _go(m, HealState.HEALING, now, reason, attempts=(*attempts, now), last_delay=0.0), [
            Action.HEAL
        ]
    return _go(m, HealState.BACKOFF, now, reason, attempts=attempts, until=now + delay, last_delay=delay), []


def transition(
    m: HealMachine,
    event: HealEvent,
    *,
    now: float,
    policy: HealingConfig,
    rng: random.Random,
    reason: str = "",
) -> tuple[HealMachine, list[Action]]:
    """Apply ``event`` at time ``now``; returns the new machine and actions to perform."""
    s = m.state
    if event is HealEvent.STOP:
        # any -> STOPPED: an operator stopped it; escalation is withdrawn (nothing is failing).
        acts = [Action.CLEAR_ESCALATION] if m.escalated else []
        return replace(_go(m, HealState.STOPPED, now, reason or "stopped"), escalated=False), acts
    if event is HealEvent.START:
        if s not in (HealState.STOPPED, HealState.FATAL):
            return m, []  # running (or being healed) already
        # STOPPED|FATAL -> STARTING: an operator started it; a clean window, FATAL cleared.
        started = _go(m, HealState.STARTING, now, reason or "started; waiting for checks")
        acts = [Action.RESET_CHECKS] + ([Action.CLEAR_ESCALATION] if m.escalated else [])
        return replace(started, deadline=now + policy.start_timeout_s, attempts=(), escalated=False), acts
    if s is HealState.STOPPED:
        return m, []  # STOPPED: every other input waits for START
    if event is HealEvent.MAINTENANCE_ON:
        if s is HealState.MAINTENANCE:
            return m, []
        # any -> MAINTENANCE: operator pause; escalation is withdrawn while someone is on it.
        acts = [Action.CLEAR_ESCALATION] if m.escalated else []
        return replace(
            _go(m, HealState.MAINTENANCE, now, reason), before_maintenance=s, escalated=False
        ), acts
    if s is HealState.MAINTENANCE:
        if event is HealEvent.MAINTENANCE_OFF:
            # MAINTENANCE -> HEALTHY: resume with a clean slate; fresh checks decide from here.
            return replace(_go(m, HealState.HEALTHY, now, "maintenance ended"), attempts=()), [
                Action.RESET_CHECKS
            ]
        return m, []  # MAINTENANCE: every other input is paused
    if event is HealEvent.MANUAL_HEAL:
        if s is HealState.HEALING:
            return m, []  # HEALING: one heal at a time
        # any -> HEALING: operator heal; clears FATAL and does not count against the window.
        acts = [Action.HEAL] + ([Action.CLEAR_ESCALATION] if m.escalated else [])
        return replace(
            _go(m, HealState.HEALING, now, reason or "manual heal"), escalated=False, attempts=()
        ), acts
    if event is HealEvent.PERMANENT:
        # any -> FATAL: a start-up error restarting cannot fix (exit code 2 before serving).
        fatal = replace(_go(m, HealState.FATAL, now, reason or "permanent start-up error"), escalated=True)
        return fatal, [] if m.escalated else [Action.ESCALATE]
    if event is HealEvent.STARTED and s is HealState.HEALTHY:
        # HEALTHY -> STARTING: first start; start-up failures are not failures until the deadline.
        started = _go(m, HealState.STARTING, now, reason or "starting; waiting for checks")
        return replace(started, deadline=now + policy.start_timeout_s), []
    if event is HealEvent.DIED and s is HealState.STARTING:
        # STARTING -> BACKOFF|FATAL: the healed component died before passing its checks.
        return _schedule_heal(m, now, policy, rng, reason or "died while starting")
    if event in (HealEvent.DOWN, HealEvent.DIED):
        if s in (HealState.HEALTHY, HealState.SUSPECT):
            # HEALTHY|SUSPECT -> HEALING|BACKOFF|FATAL: a real failure; heal per the window.
            return _schedule_heal(m, now, policy, rng, reason or "down")
        return m, []  # HEALING/STARTING/BACKOFF/FATAL: already handling it
    if event is HealEvent.SAMPLE_FAILED:
        if s is HealState.HEALTHY:
            # HEALTHY -> SUSPECT: first bad sample; watch closely, don't act yet.
            return _go(m, HealState.SUSPECT, now, reason or "check failed"), []
        return m, []
    if event is HealEvent.UP:
        if s in (HealState.SUSPECT, HealState.BACKOFF, HealState.STARTING, HealState.FATAL):
            # SUSPECT|BACKOFF|STARTING|FATAL -> HEALTHY: it passes its checks (a heal counts as
            # started only now); attempts stay in the window so flapping is still damped.
            acts = [Action.CLEAR_ESCALATION] if m.escalated else []
            return replace(_go(m, HealState.HEALTHY, now, reason or "checks pass"), escalated=False), acts
        return m, []  # HEALTHY: nothing new; HEALING: wait for the action to finish
    if event is HealEvent.HEAL_DONE and s is HealState.HEALING:
        # HEALING -> STARTING: action done; must pass checks by the deadline.
        started = _go(m, HealState.STARTING, now, reason or "healed; waiting for checks")
        return replace(started, deadline=now + policy.start_timeout_s), [Action.RESET_CHECKS]
    if event is HealEvent.DEPENDENCY_DOWN and s is HealState.HEALING:
        # HEALING -> SUSPECT: not healed, the dependency is down (a restart would not help: a
        # full disk became a crash loop that way); the attempt is not counted. Its recovery
        # decides: still down afterwards is DOWN, a heal again.
        return _go(m, HealState.SUSPECT, now, reason or "dependency down", attempts=m.attempts[:-1]), []
    if event is HealEvent.DEPENDENCY_UP and s in (HealState.HEALTHY, HealState.SUSPECT):
        # HEALTHY|SUSPECT -> STARTING: the dependency recovered; the component gets its start
        # timeout to recover too (its own probe may lag) before it counts as down itself.
        started = _go(m, HealState.STARTING, now, reason or "dependency recovered; waiting for checks")
        return replace(started, deadline=now + policy.start_timeout_s), [Action.RESET_CHECKS]
    if event is HealEvent.HEAL_ERROR and s is HealState.HEALING:
        # HEALING -> BACKOFF|FATAL: the action itself failed.
        return _schedule_heal(m, now, policy, rng, reason or "heal action failed")
    if event is HealEvent.TICK:
        if s is HealState.BACKOFF and now >= m.until:
            # BACKOFF -> HEALING: the wait is over; this attempt counts in the window.
            attempts = (*_prune(m.attempts, now, policy.window_s), now)
            return _go(m, HealState.HEALING, now, m.reason, attempts=attempts), [Action.HEAL]
        if s is HealState.STARTING and now >= m.deadline:
            # STARTING -> BACKOFF|FATAL: never passed its checks in time.
            return _schedule_heal(m, now, policy, rng, f"not healthy {policy.start_timeout_s:g}s after heal")
    return m, []
