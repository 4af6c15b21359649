"""Operator control of supervised processes (ControlComponent): start, stop, restart.

The engine owns the state (a STOPPED replica is neither healed nor counted as failing); this
module orders the process actions around it. Restarting every replica of a component is
rolling: one at a time, each serving again (or its start timeout passed) before the next, so
a replicated component never goes down for a restart.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum

from healthd._engine import HealthEngine
from healthd._healing import HealState
from healthd._replicas import Unit
from healthd._supervisor import Child, ShuttingDown
from services.common import FailedPrecondition, FieldViolation, InvalidArgument, Unavailable

POLL_S = 0.05


class Control(StrEnum):
    START = "start"
    STOP = "stop"
    RESTART = "restart"


class Controller:
    """Carries out ControlComponent on a `HealthEngine`."""

    def __init__(self, engine: HealthEngine) -> None:
        self._engine = engine
        self._actions: set[asyncio.Task[None]] = set()
        """Actions under way, held here so one whose caller went away still finishes."""
        self._locks: dict[str, asyncio.Lock] = {}
        """One per component: its actions run one after the other, in the order asked."""

    def targets(self, name: str, replica: int) -> list[Unit]:
        """The replicas an action addresses (0 = every replica).

        Raises:
            NotFound: unknown component.
            FailedPrecondition: no supervised process.
            InvalidArgument: replica out of range.
        """
        units = [u for u in self._engine.units_of(name) if u.child is not None]
        if not units:
            raise FailedPrecondition(f"component '{name}' has no supervised process")
        if replica == 0:
            return units
        if not 1 <= replica <= len(units):
            violation = FieldViolation("replica", f"0 (all) or 1..{len(units)}")
            raise InvalidArgument(f"replica {replica} out of range", [violation])
        return [units[replica - 1]]

    async def control(self, name: str, action: Control, replica: int, reason: str) -> None:
        """Do ``action`` to one replica of ``name`` or (``replica`` 0) to all of them.

        The action runs to its end even when the caller is cancelled (Ctrl-C, a deadline): a
        restart cut between its stop and its start would leave the replica STOPPED for good.
        """
        units = self.targets(name, replica)
        task = asyncio.ensure_future(self._serially(name, units, action, reason))
        self._actions.add(task)
        task.add_done_callback(self._actions.discard)
        await asyncio.shield(task)

    async def _serially(self, name: str, units: list[Unit], action: Control, reason: str) -> None:
        # A STOP asked during a rolling RESTART waits for it: interleaved, the restart's
        # starts came after the stop's stops and the component ran again after an answered STOP.
        async with self._locks.setdefault(name, asyncio.Lock()):
            await self._act(units, action, reason)

    async def _act(self, units: list[Unit], action: Control, reason: str) -> None:
        if action is Control.STOP:
            await asyncio.gather(*(self.stop(u, reason) for u in units))
        elif action is Control.START:
            for unit in units:
                await self.start(unit, reason)
        else:
            for unit in units:
                await self.restart(unit, reason)

    async def stop(self, unit: Unit, reason: str) -> None:
        """SIGTERM (grace, then SIGKILL) one replica; it stays down until started."""
        self._engine.mark_stopped(unit.name, reason)
        await _child(unit).stop()
        self._engine.process_changed(unit.name, f"stopped: {reason}", started=False)

    async def start(self, unit: Unit, reason: str) -> None:
        """Start a stopped, FATAL or dead replica; a running healthy one is left alone."""
        child = _child(unit)
        fatal = self._engine.heal_state(unit.name) is HealState.FATAL
        if child.running and not self._engine.is_stopped(unit.name) and not fatal:
            return
        self._engine.mark_starting(unit.name, reason)
        try:
            await child.start()
        except ShuttingDown as exc:  # shutdown began while this action waited its turn
            raise Unavailable(str(exc), retry_after_s=1.0) from None
        self._engine.process_changed(unit.name, f"started (pid {child.pid}): {reason}", started=True)

    async def restart(self, unit: Unit, reason: str) -> None:
        """Restart one replica and wait (bounded by its start timeout) until it passes its checks."""
        await self.stop(unit, reason)
        await self.start(unit, reason)
        engine = self._engine
        timeout = engine.config.component(unit.component).healing.start_timeout_s
        deadline = engine.clock.monotonic() + timeout
        # Checks, exits and timers all move the state; a short bounded poll is the simplest wait.
        while engine.heal_state(unit.name) is HealState.STARTING and engine.clock.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(POLL_S)


def _child(unit: Unit) -> Child:
    assert unit.child is not None  # targets() only returns supervised units
    return unit.child
