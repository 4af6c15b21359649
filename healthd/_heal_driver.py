"""Healing, driven: each unit's heal machine fed from the health verdicts, and its actions run.

A mixin of `HealthEngine` (one concept per module, as `healthd._operator`): ``_drive`` feeds an
event to a unit's `HealMachine` (`healthd._healing.transition`, pure) and carries out the
actions it returns; heals run in their own tasks and report back through ``_drive``. Like
the engine it runs on the event loop only, in plain methods: no lock is needed. The engine's
state and the engine methods used here are declared for the type checker and defined by it.
"""

from __future__ import annotations

import random
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from healthd._actions import Healer, HealFailed
from healthd._aggregate import PAUSED, CheckState, ComponentHealth, Reason, own_status
from healthd._config import HealthdConfig
from healthd._events import EventKind
from healthd._healing import Action, HealEvent, HealMachine, HealState, transition
from healthd._replicas import Unit
from healthd._scheduler import Scheduler
from healthd._telemetry import heal_span, healer_kind
from healthd._types import Status
from services.common import Clock, get_logger

_log = get_logger("vigil.healthd")


class HealDriver:
    """Drives every unit's healing machine (see the module docstring)."""

    # The engine's state (see `HealthEngine`).
    config: HealthdConfig
    clock: Clock
    scheduler: Scheduler
    units: dict[str, Unit]
    _rng: random.Random
    _units_of: dict[str, list[str]]
    _checks: dict[str, list[CheckState]]
    _heal: dict[str, HealMachine]
    _heal_changes: int
    """Counts changes to ``_heal`` and check resets: `_reevaluate` recomputes only after one."""
    _healers: dict[str, Healer | None]
    _maint: set[str]
    _stopped: set[str]
    _dependency_was_down: set[str]

    if TYPE_CHECKING:  # defined by `HealthEngine`; declared only, so nothing here shadows them

        def _reevaluate(self) -> None: ...

        def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None: ...

        def _publish(
            self, kind: EventKind, unit: str, message: str, old: str = "", new: str = ""
        ) -> None: ...

    # ---- healing ------------------------------------------------------------------------

    def _drive(self, unit: str, event: HealEvent, reason: str = "") -> None:
        old = self._heal[unit]
        policy = self.config.component(self.units[unit].component).healing
        now = self.clock.monotonic()
        new, actions = transition(old, event, now=now, policy=policy, rng=self._rng, reason=reason)
        self._heal[unit] = new
        if new is not old and new != old:
            self._heal_changes += 1
        if new.state is not old.state:
            self._publish(EventKind.HEAL_STATE, unit, new.reason, old.state.value, new.state.value)
            if new.state is HealState.BACKOFF:
                self._spawn(self._tick_at(unit, new.until))
            elif new.state is HealState.STARTING:
                self._spawn(self._tick_at(unit, new.deadline))
        for action in actions:
            self._perform(unit, action, new)

    def _perform(self, unit: str, action: Action, machine: HealMachine) -> None:
        if action is Action.HEAL:
            self._spawn(self._run_heal(unit))
        elif action is Action.RESET_CHECKS:
            # Keep each check's status (no UNKNOWN flicker on Watch) but restart its streaks,
            # so the fresh start must prove itself with success_threshold successes.
            self._checks[unit] = [CheckState(status=c.status) for c in self._checks[unit]]
            self._heal_changes += 1
        elif action is Action.ESCALATE:
            self._publish(EventKind.ESCALATION, unit, f"FATAL: {machine.reason}", new="escalated")
        elif action is Action.CLEAR_ESCALATION:
            self._publish(EventKind.ESCALATION, unit, "escalation cleared", old="escalated")

    async def _run_heal(self, unit: str) -> None:
        healer = self._healers[unit]
        assert healer is not None  # HEAL is only emitted for components with an action
        machine = self._heal[unit]
        # Manual heals clear the window, so an empty one means an operator asked.
        attempt = f"attempt {len(machine.attempts)}" if machine.attempts else "manual"
        # An automatic heal first asks the dependencies; an operator's heal is done as asked.
        down = await self._dependency_down(unit) if machine.attempts else None
        if down is not None and self._heal[unit].state is HealState.HEALING:
            why = f"not healed: dependency '{down}' is down (its checks, run just now, fail)"
            self._publish(EventKind.HEAL_RESULT, unit, why, new="skipped")
            self._drive(unit, HealEvent.DEPENDENCY_DOWN, why)
            self._reevaluate()
            return
        self._publish(EventKind.HEAL_ATTEMPT, unit, f"{attempt}: {machine.reason}")
        try:
            with heal_span(unit, healer_kind(healer), len(machine.attempts)):
                message = await healer.heal()
        except Exception as exc:  # logged and counted as a failed heal: a healer bug must not wedge HEALING
            why = str(exc) if isinstance(exc, HealFailed) else f"heal action crashed: {exc!r}"
            if not isinstance(exc, HealFailed):
                _log.exception("heal action of %s crashed", unit)
            self._publish(EventKind.HEAL_RESULT, unit, why, new="failed")
            self._drive(unit, HealEvent.HEAL_ERROR, why)
        else:
            self._publish(EventKind.HEAL_RESULT, unit, message, new="ok")
            child = self.units[unit].child
            if child is not None:
                self._publish(EventKind.PROCESS, unit, f"started (pid {child.pid})", new="started")
            self._drive(unit, HealEvent.HEAL_DONE, message)
            self._spawn(self.scheduler.check_now(unit))
        self._reevaluate()

    async def _dependency_down(self, unit: str) -> str | None:
        """The first hard dependency of ``unit``'s component whose checks fail when run now.

        A component can report itself down (its own probe of a full disk) before the
        dependency's next scheduled check sees the cause; asking the dependencies first keeps
        the heal from restarting a component that only suffers from them."""
        for dep in self.config.component(self.units[unit].component).depends_on:
            if dep in self._maint:
                continue
            for dep_unit in self._units_of[dep]:
                if any(not r.ok for r in await self.scheduler.check_now(dep_unit)):
                    return dep
        return None

    async def _tick_at(self, unit: str, at: float) -> None:
        await self.clock.sleep_until(at)
        self._drive(unit, HealEvent.TICK)
        self._reevaluate()

    # ---- the health verdicts that drive it ---------------------------------------------

    def _feed_healing(self, comps: tuple[ComponentHealth, ...]) -> None:
        for comp in comps:
            if comp.reason in PAUSED:
                continue
            for unit in self._units_of[comp.name]:
                if unit in self._stopped:
                    continue
                if comp.reason is Reason.DEPENDENCY_DOWN:
                    self._dependency_was_down.add(unit)
                    self._drive(unit, HealEvent.SAMPLE_FAILED, f"dependency '{comp.cause}' is down")
                elif (
                    unit in self._dependency_was_down and own_status(self._checks[unit]) is Status.NOT_SERVING
                ):
                    self._dependency_was_down.discard(unit)
                    self._drive(unit, HealEvent.DEPENDENCY_UP, "dependency recovered; waiting for checks")
                else:
                    self._dependency_was_down.discard(unit)
                    self._feed_unit(unit)

    def _feed_unit(self, unit: str) -> None:
        states = self._checks[unit]
        own = own_status(states)
        if own is Status.NOT_SERVING:
            self._drive(unit, HealEvent.DOWN, self._why(unit))
        elif own is Status.SERVING and all(c.successes for c in states):
            # UP needs a success on every check since the last reset: a restarted component
            # counts as started only once it has passed its checks itself.
            self._mark_served(unit)
            self._drive(unit, HealEvent.UP)
        elif any(s.last is not None and not s.last.ok for s in states):
            self._drive(unit, HealEvent.SAMPLE_FAILED, self._why(unit))

    def _mark_served(self, unit: str) -> None:
        """The child has served once it passed a real check. A live pid proves nothing (a
        config error can take seconds of imports to surface), so a child with only process
        checks never counts as served: its exit code 2 is always permanent."""
        child = self.units[unit].child
        kinds = {c.kind for c in self.config.component(self.units[unit].component).checks}
        if child is not None and kinds != {"process"}:
            child.served = True

    def _why(self, unit: str) -> str:
        for state in self._checks[unit]:
            if state.last is not None and not state.last.ok:
                return state.last.message
        return ""
