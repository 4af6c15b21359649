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
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from services.common import AlreadyExists, NotFound
from services.workflow._history import HistoryEvent, HistoryType, change_event, event_from_row
from services.workflow._model import (
    NewRun,
    Run,
    RunChange,
    RunError,
    RunPage,
    RunQuery,
    StepRecord,
    canonical_json,
)
from services.workflow._sqlite_batch import DbThread
from services.workflow._states import transition
from services.workflow._store_rows import (
    INSERT_COLUMNS,
    INSERT_COUNT,
    change_sets,
    copy_steps_sql,
    event_args,
    event_insert,
    insert_values,
    page_sql,
    query_filters,
    row_to_run,
    row_to_step,
    source_states,
    to_page,
)

__all__ = ["SQLiteRunStore"]

_MARKS = ", ".join("?" * INSERT_COUNT)
_EVENT = event_insert("?")
_RENEW_CHUNK = 500

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
    labels TEXT NOT NULL DEFAULT '{}',
    schedule TEXT,
    audit_id TEXT NOT NULL DEFAULT '',
    redactions TEXT NOT NULL DEFAULT '{}',
    started_at REAL,
    finished_at REAL,
    lease_owner TEXT,
    lease_expires REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS runs_idempotency ON runs(principal, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_open ON runs(state) WHERE state IN ('PENDING', 'RUNNING');
CREATE INDEX IF NOT EXISTS runs_workflow ON runs(workflow, seq);
-- One row the health probe rewrites: a committed write is the only proof the disk takes one
-- (a rolled-back write never reaches the WAL, so it cannot see a full disk).
CREATE TABLE IF NOT EXISTS store_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    executions INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    finished_at REAL,
    PRIMARY KEY (run_id, name)
);
"""

# Version 2: run history (GetRunHistory), step timings and errors, trace ids and retries.
HISTORY_MIGRATION = """
ALTER TABLE runs ADD COLUMN trace_id TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN retry_of TEXT;
ALTER TABLE runs ADD COLUMN resumed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN started_at REAL;
ALTER TABLE steps ADD COLUMN duration_s REAL;
ALTER TABLE steps ADD COLUMN error_category TEXT;
ALTER TABLE steps ADD COLUMN error_message TEXT;
CREATE TABLE run_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    at REAL NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX run_events_run ON run_events(run_id, id);
"""


def _events_of(conn: sqlite3.Connection, run_id: str) -> list[HistoryEvent]:
    rows = conn.execute(
        "SELECT at, type, data FROM run_events WHERE run_id = ? ORDER BY id", (run_id,)
    ).fetchall()
    return [event_from_row(i, r["at"], r["type"], r["data"]) for i, r in enumerate(rows, 1)]


def _select_run(conn: sqlite3.Connection, run_id: str) -> Run:
    row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise NotFound(f"run {run_id!r} not found")
    return row_to_run(row)


def _migrate_history(conn: sqlite3.Connection) -> None:
    # Stand-in until the store's versioned migrations land: applies HISTORY_MIGRATION once.
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'run_events'").fetchone() is None:
        for statement in HISTORY_MIGRATION.split(";"):
            if statement.strip():
                conn.execute(statement)


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
        self._writer = DbThread(str(path), "runstore-writer", writer=True, synchronous=synchronous)
        self._reader = DbThread(str(path), "runstore-reader", writer=False, synchronous=synchronous)
        self._opened = False

    async def open(self) -> None:
        if self._opened:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # Thread start blocks briefly (connect + schema); keep it off the event loop.
        await asyncio.to_thread(self._writer.start, _SCHEMA)
        await self._writer.run(_migrate_history)
        await asyncio.to_thread(self._reader.start)
        self._opened = True

    async def close(self) -> None:
        await asyncio.to_thread(self._writer.stop)
        await asyncio.to_thread(self._reader.stop)

    async def probe(self) -> None:
        now = self._clock()

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO store_probe (id, at) VALUES (1, ?)"
                " ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                (now,),
            )

        await self._writer.run(write)  # committed with its batch: Unavailable if the commit fails
        await self._reader.run(lambda conn: conn.execute("SELECT at FROM store_probe").fetchone())

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
                    return row_to_run(row), False
            row = conn.execute(
                f"INSERT INTO runs ({INSERT_COLUMNS}) VALUES ({_MARKS}) RETURNING *",
                insert_values(new, canonical_json(new.labels)),
            ).fetchone()
            if new.resume and new.retry_of:
                conn.execute(copy_steps_sql("?", "1"), (new.run_id, new.retry_of))
            created = HistoryEvent(HistoryType.RUN_CREATED, at=new.created_at)
            conn.execute(_EVENT, event_args(new.run_id, created))
            return row_to_run(row), True

        return await self._writer.run(op)

    async def get_run(self, run_id: str) -> Run:
        return await self._reader.run(lambda conn: _select_run(conn, run_id))

    async def list_runs(self, query: RunQuery) -> RunPage:
        def labels(wanted: Mapping[str, str]) -> tuple[list[str], list[Any]]:
            conds, args = [], []
            for key, value in sorted(wanted.items()):
                conds.append("json_extract(labels, ?) = ?")
                args += ['$."' + key.replace('"', '""') + '"', value]
            return conds, args

        def states(names: list[str]) -> tuple[str, list[Any]]:
            return f"state IN ({', '.join('?' * len(names))})", list(names)

        where, args = query_filters(query, "?", labels, states)
        sql = page_sql(where, "?")
        args.append(query.limit + 1)

        def op(conn: sqlite3.Connection) -> RunPage:
            return to_page([row_to_run(r) for r in conn.execute(sql, args).fetchall()], query.limit)

        return await self._reader.run(op)

    async def update_run(self, run_id: str, change: RunChange) -> Run:
        state = change.state
        # The lifecycle table decides which current states may move to ``state``; checking it
        # in the UPDATE's WHERE makes the common case one statement.
        sources = source_states(state)

        def op(conn: sqlite3.Connection) -> Run:
            now = self._clock()
            sets, args = change_sets(change, now, "?")
            marks = ", ".join("?" * len(sources))
            row = conn.execute(
                f"UPDATE runs SET {', '.join(sets)} WHERE run_id = ? AND state IN ({marks}) RETURNING *",
                [*args, run_id, *sources],
            ).fetchone()
            if row is None:  # unknown run (NotFound) or an edge the table refuses (InvalidTransition)
                transition(_select_run(conn, run_id).state, state)
                raise AssertionError("unreachable: transition() accepted a refused edge")
            run = row_to_run(row)
            event = change_event(change, run.attempts, run.created_at, now)
            if event is not None:
                conn.execute(_EVENT, event_args(run_id, event))
            return run

        return await self._writer.run(op)

    async def begin_step(self, run_id: str, name: str) -> int:
        now = self._clock()

        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "INSERT INTO steps (run_id, name, executions, started_at) VALUES (?, ?, 1, ?)"
                " ON CONFLICT (run_id, name) DO UPDATE SET executions = executions + 1,"
                " started_at = excluded.started_at RETURNING executions",
                (run_id, name, now),
            ).fetchone()
            executions = int(row[0])
            started = HistoryEvent(HistoryType.STEP_STARTED, at=now, step=name, attempt=executions)
            conn.execute(_EVENT, event_args(run_id, started))
            return executions

        return await self._writer.run(op)

    async def record_step(self, run_id: str, name: str, result: Any) -> None:
        text, now = canonical_json(result), self._clock()

        def op(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "INSERT INTO steps (run_id, name, executions, completed, result, finished_at, duration_s)"
                " VALUES (?, ?, 1, 1, ?, ?, 0) ON CONFLICT (run_id, name) DO UPDATE SET"
                " completed = 1, result = excluded.result, finished_at = excluded.finished_at,"
                " duration_s = MAX(0, excluded.finished_at - COALESCE(started_at, excluded.finished_at)),"
                " error_category = NULL, error_message = NULL"
                " WHERE completed = 0 RETURNING executions, duration_s",
                (run_id, name, text, now),
            ).fetchone()
            if row is not None:  # first write wins: a repeated finish records nothing
                finished = HistoryEvent(
                    HistoryType.STEP_FINISHED, at=now, step=name, attempt=row[0], duration_s=row[1]
                )
                conn.execute(_EVENT, event_args(run_id, finished))

        await self._writer.run(op)

    async def fail_step(self, run_id: str, name: str, error: RunError) -> None:
        now = self._clock()

        def op(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "UPDATE steps SET error_category = ?, error_message = ?,"
                " duration_s = MAX(0, ? - COALESCE(started_at, ?))"
                " WHERE run_id = ? AND name = ? AND completed = 0 RETURNING executions, duration_s",
                (error.category.value, error.message, now, now, run_id, name),
            ).fetchone()
            if row is not None:
                failed = HistoryEvent(
                    HistoryType.STEP_FAILED, at=now, step=name, attempt=row[0], duration_s=row[1], error=error
                )
                conn.execute(_EVENT, event_args(run_id, failed))

        await self._writer.run(op)

    async def append_event(self, run_id: str, event: HistoryEvent) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(_EVENT, event_args(run_id, event))

        await self._writer.run(op)

    async def get_history(self, run_id: str) -> list[HistoryEvent]:
        return await self._reader.run(lambda conn: _events_of(conn, run_id))

    async def get_steps(self, run_id: str) -> list[StepRecord]:
        def op(conn: sqlite3.Connection) -> list[StepRecord]:
            rows = conn.execute("SELECT * FROM steps WHERE run_id = ? ORDER BY rowid", (run_id,)).fetchall()
            return [row_to_step(r) for r in rows]

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
            return sorted((row_to_run(r) for r in rows), key=lambda r: (-r.priority, r.seq))

        return await self._writer.run(op)

    async def renew_leases(self, owner: str, run_ids: list[str], until: float) -> set[str]:
        if not run_ids:
            return set()

        def op(conn: sqlite3.Connection) -> set[str]:
            held: set[str] = set()
            for i in range(0, len(run_ids), _RENEW_CHUNK):  # bounded host parameters per statement
                chunk = run_ids[i : i + _RENEW_CHUNK]
                rows = conn.execute(
                    "UPDATE runs SET lease_expires = ? WHERE lease_owner = ?"
                    " AND state IN ('PENDING', 'RUNNING')"
                    f" AND run_id IN ({', '.join('?' * len(chunk))}) RETURNING run_id",
                    (until, owner, *chunk),
                ).fetchall()
                held.update(r[0] for r in rows)
            return held

        return await self._writer.run(op)
