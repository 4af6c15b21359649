"""SQLite (WAL) implementation of `RunStore` built for throughput with group commit.

All writes go to one writer thread that owns one connection. It takes every operation
queued while the previous transaction was committing and runs them in a single
transaction (each inside its own SAVEPOINT so one failing operation does not undo the
others), then commits once: N concurrent StartRuns cost one fsync, not N. Reads run on
a second thread with its own connection; WAL lets them proceed while the writer commits.
The event loop never waits on SQLite: it only queues work and awaits a future.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from services.common import AlreadyExists, NotFound
from services.workflow._model import (
    ErrorCategory,
    NewRun,
    Run,
    RunChange,
    RunError,
    RunPage,
    RunQuery,
    canonical_json,
)
from services.workflow._states import RunState, transition

__all__ = ["SQLiteRunStore"]

T = TypeVar("T")
_Op = Callable[[sqlite3.Connection], Any]
_Item = tuple[_Op, asyncio.Future[Any], asyncio.AbstractEventLoop]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    workflow TEXT NOT NULL,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    principal TEXT NOT NULL,
    priority INTEGER NOT NULL,
    idempotency_key TEXT,
    request_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    not_before REAL,
    deadline REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error_category TEXT,
    error_message TEXT,
    fallback TEXT,
    degradation TEXT,
    lease_owner TEXT,
    lease_expires REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS runs_idempotency ON runs(principal, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_open ON runs(state) WHERE state IN ('PENDING', 'RUNNING');
CREATE INDEX IF NOT EXISTS runs_workflow ON runs(workflow, seq);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""

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


def _deliver(items: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for fut, value, exc in items:
        if fut.done():  # the awaiting caller was cancelled; the work is done regardless
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)


class _DbThread:
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
            raise RuntimeError("store is closed")
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
            batch: list[_Item] = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
                if len(batch) >= _MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
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
                except Exception as exc:  # a domain error of this one operation: undo only it
                    if self._writer:
                        conn.execute("ROLLBACK TO op")
                        conn.execute("RELEASE op")
                    done.append((fut, None, exc))
            if self._writer:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:  # the transaction itself failed: nothing in it was committed
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            done = [(fut, None, exc) for _op, fut, _loop in batch]
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for (_op, _fut, loop), outcome in zip(batch, done, strict=True):
            by_loop.setdefault(loop, []).append(outcome)
        for loop, outcomes in by_loop.items():
            if not loop.is_closed():
                loop.call_soon_threadsafe(_deliver, outcomes)


def _row_to_run(row: sqlite3.Row) -> Run:
    error = None
    if row["error_category"] is not None:
        error = RunError(ErrorCategory(row["error_category"]), row["error_message"] or "")
    return Run(
        run_id=row["run_id"],
        workflow=row["workflow"],
        state=RunState(row["state"]),
        params=json.loads(row["params"]),
        principal=row["principal"],
        priority=row["priority"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        seq=row["seq"],
        idempotency_key=row["idempotency_key"],
        request_hash=row["request_hash"],
        not_before=row["not_before"],
        deadline=row["deadline"],
        attempts=row["attempts"],
        result=json.loads(row["result"]) if row["result"] is not None else None,
        error=error,
        fallback=row["fallback"],
        degradation=row["degradation"],
        lease_owner=row["lease_owner"],
        lease_expires=row["lease_expires"],
    )


def _select_run(conn: sqlite3.Connection, run_id: str) -> Run:
    row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise NotFound(f"run {run_id!r} not found")
    return _row_to_run(row)


class SQLiteRunStore:
    """`RunStore` on one SQLite file in WAL mode (see the module docstring for the design).

    Args:
        path: Database file (created with its directory); ``:memory:`` is not supported
            because the reader and writer need to share the database.
        clock: Wall-clock seconds used for ``updated_at``.
        synchronous: ``FULL`` (fsync per commit: survives power loss) or ``NORMAL``
            (survives a process crash only).
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], float], synchronous: str = "FULL") -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        self._path = Path(path)
        self._clock = clock
        self._writer = _DbThread(str(path), "runstore-writer", writer=True, synchronous=synchronous)
        self._reader = _DbThread(str(path), "runstore-reader", writer=False, synchronous=synchronous)
        self._opened = False

    async def open(self) -> None:
        if self._opened:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # Thread start blocks briefly (connect + schema); keep it off the event loop.
        await asyncio.to_thread(self._writer.start, _SCHEMA)
        await asyncio.to_thread(self._reader.start)
        self._opened = True

    async def close(self) -> None:
        await asyncio.to_thread(self._writer.stop)
        await asyncio.to_thread(self._reader.stop)

    async def create_run(self, new: NewRun) -> tuple[Run, bool]:
        digest = new.request_hash

        def op(conn: sqlite3.Connection) -> tuple[Run, bool]:
            if new.idempotency_key is not None:
                row = conn.execute(
                    "SELECT * FROM runs WHERE principal = ? AND idempotency_key = ?",
                    (new.principal, new.idempotency_key),
                ).fetchone()
                if row is not None:
                    if row["request_hash"] != digest:
                        raise AlreadyExists(
                            f"idempotency key {new.idempotency_key!r} was used for a different request "
                            f"(run {row['run_id']})"
                        )
                    return _row_to_run(row), False
            conn.execute(
                "INSERT INTO runs (run_id, workflow, state, params, principal, priority, idempotency_key,"
                " request_hash, created_at, updated_at, not_before, deadline, degradation, lease_owner,"
                " lease_expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.run_id,
                    new.workflow,
                    RunState.PENDING.value,
                    canonical_json(new.params),
                    new.principal,
                    new.priority,
                    new.idempotency_key,
                    digest,
                    new.created_at,
                    new.created_at,
                    new.not_before,
                    new.deadline,
                    new.degradation,
                    new.lease_owner,
                    new.lease_expires,
                ),
            )
            return _select_run(conn, new.run_id), True

        return await self._writer.run(op)

    async def get_run(self, run_id: str) -> Run:
        return await self._reader.run(lambda conn: _select_run(conn, run_id))

    async def list_runs(self, query: RunQuery) -> RunPage:
        where: list[str] = []
        args: list[Any] = []
        if query.workflow is not None:
            where.append("workflow = ?")
            args.append(query.workflow)
        if query.principal is not None:
            where.append("principal = ?")
            args.append(query.principal)
        if query.states:
            where.append(f"state IN ({', '.join('?' * len(query.states))})")
            args.extend(sorted(s.value for s in query.states))
        if query.before_seq is not None:
            where.append("seq < ?")
            args.append(query.before_seq)
        sql = "SELECT * FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        # One extra row tells whether another page exists without a COUNT.
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(query.limit + 1)

        def op(conn: sqlite3.Connection) -> RunPage:
            runs = [_row_to_run(r) for r in conn.execute(sql, args).fetchall()]
            more = len(runs) > query.limit
            runs = runs[: query.limit]
            return RunPage(runs=runs, next_seq=runs[-1].seq if more else None)

        return await self._reader.run(op)

    async def update_run(self, run_id: str, change: RunChange) -> Run:
        def op(conn: sqlite3.Connection) -> Run:
            current = _select_run(conn, run_id)
            state = transition(current.state, change.state)
            sets = ["state = ?", "updated_at = ?"]
            args: list[Any] = [state.value, self._clock()]
            if change.has_result:
                sets.append("result = ?")
                args.append(canonical_json(change.result))
            if change.error is not None:
                sets += ["error_category = ?", "error_message = ?"]
                args += [change.error.category.value, change.error.message]
            if change.fallback is not None:
                sets.append("fallback = ?")
                args.append(change.fallback)
            if change.attempt:
                sets.append("attempts = attempts + 1")
            if state.terminal:
                sets.append("lease_owner = NULL, lease_expires = NULL")
            elif change.lease_owner is not None:
                sets += ["lease_owner = ?", "lease_expires = ?"]
                args += [change.lease_owner, change.lease_expires]
            conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE run_id = ?", [*args, run_id])
            return _select_run(conn, run_id)

        return await self._writer.run(op)

    async def record_step(self, run_id: str, name: str, result: Any) -> None:
        text = canonical_json(result)

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR IGNORE INTO steps (run_id, name, result) VALUES (?, ?, ?)", (run_id, name, text)
            )

        await self._writer.run(op)

    async def get_steps(self, run_id: str) -> dict[str, Any]:
        def op(conn: sqlite3.Connection) -> dict[str, Any]:
            rows = conn.execute("SELECT name, result FROM steps WHERE run_id = ?", (run_id,)).fetchall()
            return {r["name"]: json.loads(r["result"]) for r in rows}

        return await self._reader.run(op)

    async def claim_runs(self, owner: str, now: float, lease_s: float, limit: int) -> list[Run]:
        def op(conn: sqlite3.Connection) -> list[Run]:
            rows = conn.execute(
                "UPDATE runs SET lease_owner = ?, lease_expires = ? WHERE run_id IN ("
                " SELECT run_id FROM runs WHERE state IN ('PENDING', 'RUNNING')"
                " AND (not_before IS NULL OR not_before <= ?)"
                " AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires < ?)"
                " ORDER BY priority DESC, seq LIMIT ?) RETURNING *",
                (owner, now + lease_s, now, owner, now, limit),
            ).fetchall()
            return sorted((_row_to_run(r) for r in rows), key=lambda r: (-r.priority, r.seq))

        return await self._writer.run(op)

    async def renew_leases(self, owner: str, run_ids: list[str], until: float) -> None:
        if not run_ids:
            return

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE runs SET lease_expires = ? WHERE run_id = ? AND lease_owner = ?"
                " AND state IN ('PENDING', 'RUNNING')",
                [(until, rid, owner) for rid in run_ids],
            )

        await self._writer.run(op)
