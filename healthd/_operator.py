"""Operator actions on the engine: checks now, heals, maintenance, stop/start of replicas.

A mixin of `HealthEngine` (kept apart so each module stays one concept): it changes the
engine's state only through the engine's own driver (`_drive`, `_reevaluate`), declared here
for the type checker and defined by the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from healthd._actions import Healer
from healthd._events import EventKind, EventLog
from healthd._healing import HealEvent, HealMachine, HealState
from healthd._replicas import Unit
from healthd._scheduler import Scheduler
from healthd._supervisor import SHUTTING_DOWN, Child
from healthd._types import CheckResult
from services.common import FailedPrecondition, NotFound, Unavailable


class OperatorActions:
    """What an operator (HealthDaemon RPCs, `healthd._control`) may do to components."""

    # The engine's state (see `HealthEngine`).
    units: dict[str, Unit]
    scheduler: Scheduler
    events: EventLog
    _units_of: dict[str, list[str]]
    _maint: set[str]
    _stopped: set[str]
    _heal: dict[str, HealMachine]
    _healers: dict[str, Healer | None]
    _shutting_down: bool

    def _drive(self, unit: str, event: HealEvent, reason: str = "") -> None:
        raise NotImplementedError

    def _reevaluate(self) -> None:
        raise NotImplementedError

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        raise NotImplementedError

    def _publish(self, kind: EventKind, unit: str, message: str, old: str = "", new: str = "") -> None:
        raise NotImplementedError

    def children_of(self, name: str) -> list[Child]:
        """The supervised processes (replicas) of a component, replica order."""
        return [c for u in self._units_of.get(name, ()) if (c := self.units[u].child) is not None]

    def refuse_if_shutting_down(self) -> None:
        """Operator actions are refused once shutdown began (retryable: the next healthd).

        Raises:
            Unavailable: healthd is shutting down.
        """
        if self._shutting_down:
            raise Unavailable(SHUTTING_DOWN, retry_after_s=1.0)

    def _known(self, name: str) -> None:
        self.refuse_if_shutting_down()
        if name not in self._units_of:
            raise NotFound(f"unknown component '{name}'")

    async def check_now(self, name: str) -> list[CheckResult]:
        """Run all of a component's checks now; results fold in unless in maintenance."""
        self._known(name)
        results = await asyncio.gather(*(self.scheduler.check_now(u) for u in self._units_of[name]))
        return [r for unit_results in results for r in unit_results]

    def heal(self, name: str, reason: str = "manual heal") -> tuple[bool, str]:
        """Start a heal now (clears FATAL) of every replica not HEALTHY, or of all when each
        is; returns (started, why not).

        Raises:
            NotFound: unknown component.
            FailedPrecondition: in maintenance, stopped, or no healing action configured.
        """
        self._known(name)
        if name in self._maint:
            raise FailedPrecondition(f"component '{name}' is in maintenance")
        units = [u for u in self._units_of[name] if u not in self._stopped]
        if not units:
            raise FailedPrecondition(f"component '{name}' is stopped; start it instead")
        if self._healers[units[0]] is None:
            raise FailedPrecondition(f"component '{name}' has no healing action configured")
        idle = [u for u in units if self._heal[u].state is not HealState.HEALING]
        if not idle:
            return False, "a heal is already running"
        # With replicas, heal those in trouble and leave the serving ones alone (healing every
        # replica at once would take the component down); all of them only if none is.
        troubled = [u for u in idle if self._heal[u].state is not HealState.HEALTHY]
        for unit in troubled or idle:
            self._drive(unit, HealEvent.MANUAL_HEAL, reason)
        self._reevaluate()
        return True, "heal started"

    def set_maintenance(self, name: str, on: bool, reason: str = "") -> None:
        """Pause (on) or resume (off) checks and healing of a component."""
        self._known(name)
        if on == (name in self._maint):
            return
        if on:
            self._maint.add(name)
        else:
            self._maint.discard(name)
        state = "on" if on else "off"
        self.events.publish(EventKind.MAINTENANCE, name, reason or state, new=state)
        for unit in self._units_of[name]:
            self._drive(unit, HealEvent.MAINTENANCE_ON if on else HealEvent.MAINTENANCE_OFF, reason)
        self._reevaluate()
        if not on:
            self._spawn(self.check_now(name))

    def units_of(self, name: str) -> list[Unit]:
        """The replicas of a component, replica order (NotFound when unknown)."""
        self._known(name)
        return [self.units[u] for u in self._units_of[name]]

    def heal_state(self, unit: str) -> HealState:
        """Where one replica is in its healing life cycle."""
        return self._heal[unit].state

    def mark_stopped(self, unit: str, reason: str) -> None:
        """An operator is stopping this replica: no healing, no failure, until `mark_starting`."""
        self.refuse_if_shutting_down()
        self._stopped.add(unit)
        self._drive(unit, HealEvent.STOP, reason)
        self._reevaluate()

    def mark_starting(self, unit: str, reason: str) -> None:
        """An operator is starting this replica (clears STOPPED and FATAL)."""
        self.refuse_if_shutting_down()
        self._stopped.discard(unit)
        self._drive(unit, HealEvent.START, reason)
        self._reevaluate()

    def process_changed(self, unit: str, message: str, started: bool) -> None:
        """Record an operator's start or stop of the process; a started one is checked now."""
        self._publish(EventKind.PROCESS, unit, message, new="started" if started else "exited")
        if started:
            self._spawn(self.scheduler.check_now(unit))
        self._reevaluate()

    def is_stopped(self, unit: str) -> bool:
        return unit in self._stopped
