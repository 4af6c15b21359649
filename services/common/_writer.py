"""One thread that serves a queue in batches: the group-commit writer of both SQLite stores.

Callers on an event loop `submit` an item and await its future. The thread takes every
item queued while it was busy (`next_batch`) and hands the batch to ``handle`` at once, so
N concurrent requests share one transaction and one fsync (SQLite releases the GIL during
I/O, so the loops keep serving meanwhile). Outcomes go back to each caller's loop with
`call_soon_threadsafe`.

Invariants:
- Items are handled in submission order, and every item accepted by `submit` gets an
  outcome: ``close`` puts its stop marker behind every accepted item (a lock orders the
  two), so what was queued before ``close`` is handled before the thread ends.
- ``handle(batch)`` returns one outcome per item in order; an outcome that is an exception
  is raised to that item's caller alone (per-item isolation is the handler's business,
  e.g. `services.common.run_in_savepoints`). If ``handle`` raises, every caller in the batch gets
  that exception: nothing of the batch was committed.
- A caller that was cancelled meanwhile is skipped; its item was handled all the same.
- The items of one `submit_all` are handled in the same batch (one transaction), even when
  that makes the batch exceed ``limit``.
- ``idle`` (housekeeping such as a WAL checkpoint) runs on the thread once the queue has
  been empty for ``idle_s`` after a batch, never between the items of one: it cannot delay a
  commit already waiting, and it runs again only after more work arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeAlias, TypeVar

from services.common._batching import next_batch

__all__ = ["BatchWriter"]

I = TypeVar("I")  # noqa: E741 -- the item type
R = TypeVar("R")
_Entry: TypeAlias = tuple[I, "asyncio.Future[R]", asyncio.AbstractEventLoop]
_STOP = object()
_log = logging.getLogger(__name__)


class _Group(Generic[I, R]):
    """Entries queued as one unit by `BatchWriter.submit_all`: they go in the same batch."""

    __slots__ = ("entries",)

    def __init__(self, entries: list[_Entry[I, R]]) -> None:
        self.entries = entries


class BatchWriter(Generic[I, R]):
    """Runs ``handle(batch) -> outcomes`` on its own thread for items `submit`ted from event loops.

    Args:
        handle: Called on the writer thread with up to ``limit`` items in submission order.
        name: The thread's name (shows in stack dumps).
        limit: Upper bound on items per batch: bounds one commit's latency.
        closed: Builds the exception `submit` raises once `close` was called.
        idle: Called on the thread after ``idle_s`` without work (its errors are logged).
    """

    def __init__(
        self,
        handle: Callable[[list[I]], Sequence[R | BaseException]],
        *,
        name: str,
        limit: int = 1 << 30,
        closed: Callable[[], Exception] = lambda: RuntimeError("batch writer is closed"),
        idle: Callable[[], None] | None = None,
        idle_s: float = 1.0,
    ) -> None:
        self._handle, self._limit, self._closed = handle, limit, closed
        self._idle, self._idle_s = idle, idle_s
        # A C-level queue: put() is one call that wakes the writer only if it waits (a
        # threading.Condition costs a Python-level lock dance and notify per request).
        self._queue: queue.SimpleQueue[_Entry[I, R] | object] = queue.SimpleQueue()
        # Orders submits against close() (uncontended: one C-level acquire per submit).
        self._lock = threading.Lock()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def submit(self, item: I) -> R:
        """Queue ``item`` and wait for its outcome (its batch handled and committed, or failed)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        with self._lock:
            if self._closing:
                raise self._closed()
            self._queue.put((item, future, loop))
        return await future

    async def submit_all(self, items: Sequence[I]) -> list[R | BaseException]:
        """Queue ``items`` as one unit and wait for their outcomes, in order (exceptions returned,
        not raised): they are handled in one batch, so a group commit stores all or none of them."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[R]] = [loop.create_future() for _ in items]
        with self._lock:
            if self._closing:
                raise self._closed()
            self._queue.put(_Group([(item, f, loop) for item, f in zip(items, futures, strict=True)]))
        return await asyncio.gather(*futures, return_exceptions=True)

    def close(self, timeout: float | None = None) -> None:
        """Handle everything accepted so far, then stop the thread (waits up to ``timeout``)."""
        with self._lock:
            if not self._closing:
                self._closing = True
                self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping, busy = False, False
        while not stopping:
            # After work, wait at most idle_s for more; once idle, block until work arrives.
            timeout = self._idle_s if busy and self._idle is not None else None
            batch, stopping = next_batch(self._queue, _STOP, self._limit, timeout)
            if any(isinstance(e, _Group) for e in batch):
                batch = [x for e in batch for x in (e.entries if isinstance(e, _Group) else (e,))]
            if batch:
                self._serve(batch)
                busy = True
            elif not stopping and self._idle is not None:
                busy = False
                try:
                    self._idle()
                except Exception:  # housekeeping only: the writer must live on whatever happens
                    _log.exception("%s: idle housekeeping failed", self._thread.name)

    def _serve(self, batch: list[_Entry[I, R]]) -> None:
        try:
            outcomes: Sequence[R | BaseException] = self._handle([item for item, _, _ in batch])
            if len(outcomes) != len(batch):
                raise AssertionError(f"handler returned {len(outcomes)} outcomes for {len(batch)} items")
        except Exception as exc:  # the batch failed as a whole: every caller gets the error
            outcomes = [exc] * len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[R], R | BaseException]]] = {}
        for (_, future, loop), outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((future, outcome))
        for loop, results in by_loop.items():
            # A loop closed meanwhile has nobody waiting; the writer must not die of it.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, results)


def _resolve(results: list[tuple[asyncio.Future[R], R | BaseException]]) -> None:
    for future, outcome in results:
        if future.done():
            continue  # the caller was cancelled; its item was handled all the same
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
