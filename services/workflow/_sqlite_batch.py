"""Group commit for SQLite: one thread, one connection, queued operations run in batches.

The writer flavour wraps each batch in one transaction, each operation inside its own
SAVEPOINT so one failing operation (a domain error such as AlreadyExists) is undone alone
while its neighbours commit. N concurrent writers thus share one COMMIT (and one fsync).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from services.common import Unavailable, next_batch

__all__ = ["DbThread"]

T = TypeVar("T")
_Op = Callable[[sqlite3.Connection], Any]
_Item = tuple[_Op, asyncio.Future[Any], asyncio.AbstractEventLoop]

# Upper bound on operations per transaction: keeps one commit's latency bounded.
_MAX_BATCH = 512
_STOP: Any = object()


def _connect(path: str, synchronous: str) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves (the writer batches).
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _store_error(exc: Exception) -> Exception:
    """SQLite failures reach callers as Unavailable (the store cannot serve), never INTERNAL."""
    if isinstance(exc, sqlite3.Error):
        return Unavailable(f"run store unavailable: {exc}")
    return exc


def _deliver(items: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for fut, value, exc in items:
        if fut.done():  # the awaiting caller was cancelled; the work is done regardless
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)


class DbThread:
    """A thread that owns one connection and runs queued operations in batches."""

    def __init__(self, path: str, name: str, *, writer: bool, synchronous: str) -> None:
        self._path, self._writer, self._sync = path, writer, synchronous
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, schema: str | None = None) -> None:
        self._schema = schema
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    async def run(self, op: Callable[[sqlite3.Connection], T]) -> T:
        if not self._thread.is_alive():
            raise Unavailable("run store is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put((op, fut, loop))
        return await fut

    def _main(self) -> None:
        try:
            conn = _connect(self._path, self._sync)
            if self._schema:
                conn.executescript(self._schema)
        except BaseException as exc:  # reported to start(), which re-raises it
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        stopping = False
        while not stopping:
            batch, stopping = next_batch(self._queue, _STOP, _MAX_BATCH)
            if batch:
                self._run_batch(conn, batch)
        conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Item]) -> None:
        done: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            if self._writer:
                conn.execute("BEGIN IMMEDIATE")
            for op, fut, _loop in batch:
                if self._writer:
                    conn.execute("SAVEPOINT op")
                try:
                    done.append((fut, op(conn), None))
                    if self._writer:
                        conn.execute("RELEASE op")
                except Exception as exc:  # an error of this one operation: undo only it
                    if self._writer:
                        conn.execute("ROLLBACK TO op")
                        conn.execute("RELEASE op")
                    done.append((fut, None, _store_error(exc)))
            if self._writer:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:  # the transaction itself failed: nothing in it was committed
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # the thread must live on whatever happens
                    conn.execute("ROLLBACK")
            done = [(fut, None, _store_error(exc)) for _op, fut, _loop in batch]
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for (_op, _fut, loop), outcome in zip(batch, done, strict=True):
            by_loop.setdefault(loop, []).append(outcome)
        for loop, outcomes in by_loop.items():
            # A loop closed meanwhile has nobody waiting; the writer must not die of it.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_deliver, outcomes)
