"""Bulkhead: per-workflow concurrency limit, a bounded priority queue, and load shedding."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.common import ResourceExhausted

__all__ = ["Bulkhead"]


class Bulkhead:
    """At most ``max_concurrent`` runs of a workflow execute; up to ``max_queue`` more wait.

    `reserve` is synchronous and called before a run is accepted, so a full bulkhead answers
    RESOURCE_EXHAUSTED instead of persisting work it cannot take. A reservation is held until
    the run finishes; `Admission` tickets own reservations, so each is released exactly once.
    `slot` waits for an execution slot; waiting runs get slots highest priority first, FIFO
    within a priority.
    """

    def __init__(self, name: str, max_concurrent: int, max_queue: int, retry_after_s: float = 1.0) -> None:
        self.name = name
        self.max_concurrent, self.max_queue, self.retry_after_s = max_concurrent, max_queue, retry_after_s
        self.reserved = 0  # accepted runs of this workflow not yet finished (running + queued)
        self.running = 0  # runs holding a slot
        # Waiters as (-priority, arrival, future). Invariant: a waiter exists only while every
        # slot is taken; a freed slot goes straight to the best waiter (running stays the same).
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrival = itertools.count()

    def reserve(self, *, force: bool = False) -> None:
        """Count one more accepted run, or raise ResourceExhausted when full (unless ``force``).

        ``force`` is for runs accepted earlier (resumed after a restart): never shed those.
        """
        if not force and self.reserved >= self.max_concurrent + self.max_queue:
            raise ResourceExhausted(
                f"workflow {self.name!r} is at capacity ({self.max_concurrent} running, "
                f"{self.max_queue} queued)",
                retry_after_s=self.retry_after_s,
            )
        self.reserved += 1

    def release(self) -> None:
        self.reserved -= 1

    def try_acquire(self) -> bool:
        """Take an execution slot now if one is free and nobody waits (no queue jumping);
        the holder gives it back with `free`, or uses it with ``slot(acquired=True)``."""
        if self.running < self.max_concurrent and not self._waiters:
            self.running += 1
            return True
        return False

    def free(self) -> None:
        """Give back a slot taken with `try_acquire` (and never used by `slot`)."""
        self._hand_over()

    @asynccontextmanager
    async def slot(self, priority: int = 0, *, acquired: bool = False) -> AsyncIterator[None]:
        """Hold one execution slot for the duration of the block (``acquired``: the caller
        took it already with `try_acquire`)."""
        if not acquired and not self.try_acquire():
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (-priority, next(self._arrival), fut)
            heapq.heappush(self._waiters, entry)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._hand_over()  # we were given the slot as we were cancelled: pass it on
                else:
                    self._waiters.remove(entry)
                    heapq.heapify(self._waiters)
                raise
        try:
            yield
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        """A slot was freed: give it to the best waiter, else count it free."""
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)
                return
        self.running -= 1
