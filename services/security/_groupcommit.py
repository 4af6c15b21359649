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
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommitter"]

P = TypeVar("P")
R = TypeVar("R")


class GroupCommitter(Generic[P, R]):
    """Batches ``submit``ted items into calls of ``write(batch) -> results`` on a writer thread."""

    def __init__(self, write: Callable[[list[P]], Sequence[R]], *, name: str = "group-commit") -> None:
        self._write = write
        # This condition guards _queue and _closing; the writer never holds it while writing.
        self._cond = threading.Condition()
        self._queue: list[tuple[P, asyncio.Future[R], asyncio.AbstractEventLoop]] = []
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def submit(self, item: P) -> R:
        """Queue ``item`` and wait until the batch holding it is written (or failed)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        with self._cond:
            if self._closing:
                raise RuntimeError("group committer is closed")
            self._queue.append((item, future, loop))
            self._cond.notify()
        return await future

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                batch, self._queue = self._queue, []
                if not batch and self._closing:
                    return
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
