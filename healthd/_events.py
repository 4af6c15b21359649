"""Events (transitions, heal attempts, escalations) with a bounded history and fan-out.

Publishing never blocks and never waits for a subscriber: each subscriber has its own bounded
queue; when a slow subscriber's queue is full its oldest event is dropped and counted, so one
stuck reader (a dashboard tab, a Watch client) cannot stall healthd or other readers.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class EventKind(StrEnum):
    """What an event reports."""

    STATUS = "STATUS"
    """A component's effective status changed."""
    SYSTEM = "SYSTEM"
    """System status, score or degradation level changed."""
    HEAL_STATE = "HEAL_STATE"
    """A healing state machine moved."""
    HEAL_ATTEMPT = "HEAL_ATTEMPT"
    """A heal action started."""
    HEAL_RESULT = "HEAL_RESULT"
    """A heal action finished (ok or failed)."""
    ESCALATION = "ESCALATION"
    """FATAL escalated (``liveness`` NOT_SERVING) or the escalation was cleared."""
    MAINTENANCE = "MAINTENANCE"
    """Maintenance mode turned on or off."""
    LIVENESS = "LIVENESS"
    """healthd's own liveness changed (escalation or watchdog)."""
    PROCESS = "PROCESS"
    """A supervised child exited or was started."""


@dataclass(frozen=True)
class Event:
    """One thing that happened. ``seq`` increases by one per event (gaps mean drops)."""

    seq: int
    at: float
    """Wall-clock time (``time.time()``)."""
    kind: EventKind
    component: str
    message: str
    old: str = ""
    new: str = ""


class Subscription:
    """A subscriber's bounded queue of events; iterate with ``async for``."""

    def __init__(self, maxsize: int, on_close: Callable[[Subscription], None]) -> None:
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self._on_close = on_close
        self.dropped = 0
        self.closed = False

    def offer(self, event: Event | None) -> None:
        """Enqueue without blocking; drops the oldest event when full (``None`` ends iteration)."""
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    def close(self) -> None:
        """Stop receiving; a pending ``async for`` ends."""
        if not self.closed:
            self.closed = True
            self._on_close(self)
            self.offer(None)

    def drain(self) -> list[Event]:
        """Events already queued, without waiting (the end marker stays queued)."""
        out: list[Event] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                self._queue.put_nowait(None)
                break
            out.append(item)
        return out

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class EventLog:
    """Bounded history plus live fan-out."""

    def __init__(self, history: int, wall: Callable[[], float] = time.time) -> None:
        self._history: deque[Event] = deque(maxlen=history)
        self._subs: set[Subscription] = set()
        self._seq = itertools.count(1)
        self._wall = wall

    def publish(self, kind: EventKind, component: str, message: str, old: str = "", new: str = "") -> Event:
        """Record and fan out an event; never blocks."""
        event = Event(next(self._seq), self._wall(), kind, component, message, old, new)
        self._history.append(event)
        for sub in list(self._subs):
            sub.offer(event)
        return event

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        """A new live subscription (use as a context manager or call ``close()``)."""
        sub = Subscription(maxsize, self._subs.discard)
        self._subs.add(sub)
        return sub

    def since(self, seq: int = 0, component: str = "", limit: int = 1000) -> list[Event]:
        """Events after ``seq``, optionally for one component, oldest first, at most ``limit``."""
        out = [e for e in self._history if e.seq > seq and (not component or e.component == component)]
        return out[-limit:] if limit else out

    def close_all(self) -> None:
        """End every subscription (shutdown)."""
        for sub in list(self._subs):
            sub.close()
