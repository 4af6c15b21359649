"""The one fake `services.common.Clock` of the test suite: time moves only when a test says so.

``now`` is both readings (monotonic and wall); tests set it with the constructor and move
it with `advance` (sync) or `run_for` (advance, then let the event loop run). The instance
is also callable (``clock()`` is ``now``) for policy objects that take a bare ``clock=``.

Sleeping has two modes, chosen per test:
- default: ``sleep``/``sleep_until`` block until the test advances time past the deadline
  (schedulers, watchdogs: the test decides what has happened by when);
- ``sleep_advances=True``: ``sleep(s)`` records ``s`` in ``slept`` and passes the time at
  once (retry backoff, pacing loops: the test checks how long the code chose to wait).
"""

from __future__ import annotations

import asyncio

__all__ = ["FakeClock"]


class FakeClock:
    def __init__(self, start: float = 1000.0, *, sleep_advances: bool = False) -> None:
        self.now = start
        self.sleep_advances = sleep_advances
        self.slept: list[float] = []
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if self.sleep_advances:
            self.slept.append(seconds)
            self.advance(max(0.0, seconds))
            await asyncio.sleep(0)
        else:
            await self.sleep_until(self.now + seconds)

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self.now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((deadline, fut))
        await fut

    def advance(self, seconds: float) -> None:
        """Move time forward and wake the sleepers now due (earliest deadline first)."""
        self.now += seconds
        due = sorted(((d, f) for d, f in self._sleepers if d <= self.now), key=lambda item: item[0])
        self._sleepers = [(d, f) for d, f in self._sleepers if d > self.now]
        for _, fut in due:
            if not fut.done():
                fut.set_result(None)

    async def run_for(self, seconds: float, settle: int = 20) -> None:
        """`advance`, then let the loop run ``settle`` rounds so woken tasks get going."""
        self.advance(seconds)
        for _ in range(settle):
            await asyncio.sleep(0)
