"""Admission: who owns an accepted run's bulkhead slot, from reservation to release.

A run holds one reservation in its workflow's `Bulkhead` from the moment StartRun accepts it
(or the executor resumes it) until its execution ends. The reservation is a `Ticket`; the
invariant is that each ticket releases its reservation exactly once, whichever path is taken:
refused after reservation, store failure, idempotent replay (the run exists already), or
executed to the end. StartRun holds the ticket in a ``with`` block and hands it to the
executor with `Ticket.hand_over` once the run is dispatched; whatever is still held when the
block ends is released there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType

from services.workflow._bulkhead import Bulkhead
from services.workflow._registry import Workflow

__all__ = ["Admission", "Load", "Ticket"]


class Ticket:
    """One accepted run's reservation in a bulkhead (or none: a run scheduled for later
    reserves when it becomes due), and possibly an execution slot taken early
    (`take_free_slot`). Released at most once; ``with`` releases it on exit."""

    def __init__(self, bulkhead: Bulkhead | None, *, slotted: bool = False) -> None:
        self._bulkhead = bulkhead
        self._slotted = slotted  # holds an execution slot `slot` has not used yet

    @property
    def held(self) -> bool:
        return self._bulkhead is not None

    def take_free_slot(self) -> bool:
        """Take the bulkhead's execution slot now if one is free (nobody queued), so the run
        can be persisted with its first attempt started: it will not wait in the queue.
        The slot is given back with the reservation unless `slot` uses it."""
        if self._bulkhead is not None and not self._slotted:
            self._slotted = self._bulkhead.try_acquire()
        return self._slotted

    def release(self) -> None:
        """Give the reservation (and an unused slot) back (idempotent)."""
        bulkhead, self._bulkhead = self._bulkhead, None
        if bulkhead is not None:
            if self._slotted:
                self._slotted = False
                bulkhead.free()
            bulkhead.release()

    def hand_over(self) -> Ticket:
        """A ticket holding this one's reservation (and slot); this one holds nothing afterwards."""
        bulkhead, slotted, self._bulkhead, self._slotted = self._bulkhead, self._slotted, None, False
        return Ticket(bulkhead, slotted=slotted)

    @asynccontextmanager
    async def slot(self, priority: int) -> AsyncIterator[None]:
        """Hold an execution slot of the reserved bulkhead: the one taken early, else the next
        one free (waiting for it by priority)."""
        if self._bulkhead is None:
            raise RuntimeError("a released ticket has no slot")
        acquired, self._slotted = self._slotted, False  # the block owns it from here
        async with self._bulkhead.slot(priority, acquired=acquired):
            yield

    def __enter__(self) -> Ticket:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


@dataclass(frozen=True)
class Load:
    """How busy a workflow's bulkhead is."""

    in_flight: int  # runs holding an execution slot
    queued: int  # accepted runs waiting for one


class Admission:
    """The per-workflow bulkheads of one replica, and the tickets that reserve in them."""

    def __init__(self) -> None:
        self._bulkheads: dict[str, Bulkhead] = {}

    def _bulkhead(self, wf: Workflow) -> Bulkhead:
        bulkhead = self._bulkheads.get(wf.name)
        if bulkhead is None:
            p = wf.policy
            bulkhead = self._bulkheads[wf.name] = Bulkhead(wf.name, p.max_concurrency, p.max_queue)
        return bulkhead

    def admit(self, wf: Workflow, *, defer: bool = False) -> Ticket:
        """Reserve for a new run, or raise ResourceExhausted (with a retry delay) when full.

        ``defer``: the run is scheduled for later; it reserves (never shed) when it is due.
        """
        if defer:
            return Ticket(None)
        bulkhead = self._bulkhead(wf)
        bulkhead.reserve()
        return Ticket(bulkhead)

    def readmit(self, wf: Workflow) -> Ticket:
        """Reserve for a run accepted earlier (due, resumed or taken over): never shed."""
        bulkhead = self._bulkhead(wf)
        bulkhead.reserve(force=True)
        return Ticket(bulkhead)

    def load(self, wf: Workflow) -> Load:
        bulkhead = self._bulkheads.get(wf.name)
        if bulkhead is None:
            return Load(0, 0)
        return Load(bulkhead.running, max(0, bulkhead.reserved - bulkhead.running))
