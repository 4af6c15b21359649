"""Group commit for the audit log: one writer thread, one transaction per batch.

Requests hand a prepared record to `GroupCommitter.submit` and await its future. The
writer thread takes everything queued, writes it in one transaction (SQLite releases
the GIL while it does I/O, so the event loop keeps serving meanwhile) and resolves the
futures back on the loop. Under load, records queue up while a commit is in flight and
share the next one, so the per-request cost of durability shrinks with concurrency.

Invariant: a future resolves with its record only after that record's transaction
committed; if the transaction failed, every future in the batch gets the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeAlias, TypeVar

from services.common import next_batch

__all__ = ["GroupCommitter"]

P = TypeVar("P")
R = TypeVar("R")
_Item: TypeAlias = tuple[P, "asyncio.Future[R]", asyncio.AbstractEventLoop]


class GroupCommitter(Generic[P, R]):
    """Batches ``submit``ted items into calls of ``write(batch) -> results`` on a writer thread."""

    def __init__(self, write: Callable[[list[P]], Sequence[R]], *, name: str = "group-commit") -> None:
        self._write = write
        # A C-level queue: put() is one call that wakes the writer only if it waits (a
        # threading.Condition costs a Python-level lock dance and notify per request).
        self._queue: queue.SimpleQueue[_Item[P, R] | None] = queue.SimpleQueue()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def submit(self, item: P) -> R:
        """Queue ``item`` and wait until the batch holding it is written (or failed)."""
        if self._closing:
            raise RuntimeError("group committer is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.put((item, future, loop))
        return await future

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer thread."""
        self._closing = True
        self._queue.put(None)  # the stop marker: everything queued before it is written first
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = next_batch(self._queue, None)
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[_Item[P, R]]) -> None:
        try:
            results: Sequence[R] | BaseException = self._write([item for item, _, _ in batch])
        except Exception as exc:  # delivered to every waiter of the batch, which re-raises it
            results = exc
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[R], R | BaseException]]] = {}
        for i, (_, future, loop) in enumerate(batch):
            outcome = results if isinstance(results, BaseException) else results[i]
            by_loop.setdefault(loop, []).append((future, outcome))
        for loop, outcomes in by_loop.items():
            # A closed loop raises RuntimeError: nobody is waiting there any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, outcomes)


def _resolve(outcomes: list[tuple[asyncio.Future[R], R | BaseException]]) -> None:
    for future, outcome in outcomes:
        if future.done():
            continue  # the caller was cancelled; its record is stored all the same
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
