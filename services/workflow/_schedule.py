"""Cron schedules: each slot of a schedule starts one run, never two.

A slot's idempotency key is derived from the schedule name and the slot time, so a
restart, a second replica or a repeated tick that fires the same slot again gets the run
that already exists instead of a new one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from croniter import croniter
from pydantic import Field, field_validator

from services.common import ConfigModel

__all__ = ["ScheduleConfig", "Scheduler", "slot_key"]

_log = logging.getLogger(__name__)


class ScheduleConfig(ConfigModel):
    """One cron schedule from the service config."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    """Unique name; part of every slot's idempotency key."""
    cron: str
    """Five-field cron expression, evaluated in UTC (e.g. ``*/5 * * * *``)."""
    workflow: str
    """Workflow to start."""
    params: dict[str, Any] = {}
    """Params of every run."""
    priority: int = 0
    """Priority of its runs (0: the workflow's default)."""
    catch_up: bool = True
    """At start-up, also start the latest slot that passed while the service was down."""

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"invalid cron expression {value!r}")
        return value


def slot_key(name: str, slot: float) -> str:
    """Idempotency key of one slot of schedule ``name``."""
    when = dt.datetime.fromtimestamp(slot, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"schedule:{name}:{when}"


def slots_between(cron: str, after: float, until: float) -> list[float]:
    """Slot times ``t`` with ``after < t <= until``."""
    out: list[float] = []
    t = next_slot(cron, after)
    while t <= until:
        out.append(t)
        t = next_slot(cron, t)
    return out


def next_slot(cron: str, after: float) -> float:
    """First slot strictly after ``after``."""
    return float(croniter(cron, dt.datetime.fromtimestamp(after, tz=dt.UTC)).get_next(float))


def latest_slot(cron: str, at_or_before: float) -> float:
    it = croniter(cron, dt.datetime.fromtimestamp(at_or_before + 1e-6, tz=dt.UTC))
    return float(it.get_prev(float))


StartSlot = Callable[[ScheduleConfig, float], Awaitable[None]]


class Scheduler:
    """Fires the slots of cron schedules through ``start(schedule, slot_time)``.

    Args:
        schedules: From config.
        start: Starts one run for a slot (with `slot_key` as idempotency key and the slot
            time as not-before); its failures are logged and the slot is not retried by the
            scheduler (the idempotency key keeps a later manual retry safe).
        clock: Wall-clock seconds.
        sleep: Injectable for tests.
    """

    def __init__(
        self,
        schedules: list[ScheduleConfig],
        start: StartSlot,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._schedules, self._start, self._clock, self._sleep = schedules, start, clock, sleep
        now = clock()
        # Last instant already handled per schedule; catch-up starts just before the latest slot.
        self._done: dict[str, float] = {
            s.name: (latest_slot(s.cron, now) - 1e-3 if s.catch_up else now) for s in schedules
        }

    async def tick(self) -> list[tuple[str, float]]:
        """Fire every slot that came due since the last tick; returns (schedule, slot) fired."""
        now = self._clock()
        fired = []
        for s in self._schedules:
            for slot in slots_between(s.cron, self._done[s.name], now):
                try:
                    await self._start(s, slot)
                except Exception:  # one failed slot must not stop the others
                    _log.exception("schedule %s: starting slot %s failed", s.name, slot_key(s.name, slot))
                fired.append((s.name, slot))
            self._done[s.name] = now
        return fired

    def next_due(self) -> float | None:
        """Earliest upcoming slot across schedules."""
        nexts = [next_slot(s.cron, self._done[s.name]) for s in self._schedules]
        return min(nexts) if nexts else None

    async def run(self) -> None:
        """Tick forever, sleeping until the next slot (at most 60 s at a time)."""
        while True:
            await self.tick()
            nxt = self.next_due()
            if nxt is None:
                return
            await self._sleep(min(60.0, max(0.0, nxt - self._clock())))
