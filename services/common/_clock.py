"""Time, as every Vigil service reads it: one injectable `Clock`, so tests drive time.

Two readings, never mixed: ``monotonic()`` for intervals, grids, timeouts and breaker
windows (never jumps); ``time()`` (Unix seconds) for what is stored or shown: run
deadlines, leases, ``not_before``, audit timestamps. ``sleep``/``sleep_until`` wait on the
monotonic reading. Product code takes a ``Clock`` (or, in small policy objects, one of
its bound methods as ``clock=``/``now=``/``sleep=``); tests pass ``tests.clock.FakeClock``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "Now", "Sleep", "SystemClock"]

Now = Callable[[], float]
"""One reading of a `Clock` (``clock.time`` or ``clock.monotonic``), for small policy objects."""
Sleep = Callable[[float], Awaitable[None]]
"""A `Clock`'s ``sleep``, for small policy objects."""


class Clock(Protocol):
    """Monotonic and wall time, and sleeping on the monotonic one."""

    def monotonic(self) -> float:
        """Seconds on a monotonic clock (intervals only; no meaning across processes)."""
        ...

    def time(self) -> float:
        """Wall-clock Unix seconds (stored and shown times)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` (at once when <= 0)."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``monotonic() >= deadline``."""
        ...


class SystemClock:
    """The real clocks: ``time.monotonic`` (the one asyncio's loop uses) and ``time.time``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))


SYSTEM_CLOCK: Clock = SystemClock()
"""The process's real clock (stateless; shared)."""
