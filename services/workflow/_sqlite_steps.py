"""SQLite: a run's steps and history events, as the operations `SQLiteRunStore` runs.

Each function runs on the store's writer (or reader) thread inside its transaction: a step
write and its history event commit together, and a fenced write checks the lease under the
file's write lock (no claim can move the lease between the check and the write).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from typing import Any

from services.workflow._history import HistoryEvent, HistoryType, event_from_row
from services.workflow._model import Lease, RunError, StepRecord
from services.workflow._store_rows import event_args, event_insert, lease_lost, row_to_step

__all__ = [
    "EVENT_SQL",
    "append_event",
    "begin_step",
    "check_lease",
    "events_of",
    "fail_step",
    "record_step",
    "steps_of",
]

EVENT_SQL = event_insert("?")


def check_lease(
    conn: sqlite3.Connection, run_id: str, lease: Lease, live_at: Callable[[], float] | None = None
) -> None:
    """Raise LeaseLost unless ``lease`` still holds ``run_id`` (with ``live_at``: and has not
    expired by that clock)."""
    sql = "SELECT 1 FROM runs WHERE run_id = ? AND lease_owner = ? AND lease_epoch = ?"
    args: list[Any] = [run_id, lease.owner, lease.epoch]
    if live_at is not None:
        sql += " AND lease_expires >= ?"
        args.append(live_at())
    if conn.execute(sql, args).fetchone() is None:
        raise lease_lost(run_id, lease)


def begin_step(
    conn: sqlite3.Connection,
    run_id: str,
    name: str,
    now: float,
    lease: Lease | None,
    clock: Callable[[], float],
) -> int:
    if lease is not None:
        check_lease(conn, run_id, lease, live_at=clock)
    row = conn.execute(
        "INSERT INTO steps (run_id, name, executions, started_at) VALUES (?, ?, 1, ?)"
        " ON CONFLICT (run_id, name) DO UPDATE SET executions = executions + 1,"
        " started_at = excluded.started_at RETURNING executions",
        (run_id, name, now),
    ).fetchone()
    executions = int(row[0])
    started = HistoryEvent(HistoryType.STEP_STARTED, at=now, step=name, attempt=executions)
    conn.execute(EVENT_SQL, event_args(run_id, started))
    return executions


def record_step(
    conn: sqlite3.Connection, run_id: str, name: str, text: str, now: float, lease: Lease | None
) -> None:
    if lease is not None:
        check_lease(conn, run_id, lease)
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
        _step_event(conn, run_id, name, row, HistoryEvent(HistoryType.STEP_FINISHED, at=now))


def fail_step(
    conn: sqlite3.Connection, run_id: str, name: str, error: RunError, now: float, lease: Lease | None
) -> None:
    if lease is not None:
        check_lease(conn, run_id, lease)
    row = conn.execute(
        "UPDATE steps SET error_category = ?, error_message = ?,"
        " duration_s = MAX(0, ? - COALESCE(started_at, ?))"
        " WHERE run_id = ? AND name = ? AND completed = 0 RETURNING executions, duration_s",
        (error.category.value, error.message, now, now, run_id, name),
    ).fetchone()
    if row is not None:  # a finished step is kept as it is
        _step_event(conn, run_id, name, row, HistoryEvent(HistoryType.STEP_FAILED, at=now, error=error))


def _step_event(conn: sqlite3.Connection, run_id: str, name: str, row: Any, event: HistoryEvent) -> None:
    """Append ``event`` of step ``name`` with the (executions, duration_s) ``row`` its write returned."""
    event = dataclasses.replace(event, step=name, attempt=row[0], duration_s=row[1])
    conn.execute(EVENT_SQL, event_args(run_id, event))


def append_event(conn: sqlite3.Connection, run_id: str, event: HistoryEvent, lease: Lease | None) -> None:
    if lease is not None:
        check_lease(conn, run_id, lease)
    conn.execute(EVENT_SQL, event_args(run_id, event))


def events_of(conn: sqlite3.Connection, run_id: str) -> list[HistoryEvent]:
    rows = conn.execute(
        "SELECT at, type, data FROM run_events WHERE run_id = ? ORDER BY id", (run_id,)
    ).fetchall()
    return [event_from_row(i, r["at"], r["type"], r["data"]) for i, r in enumerate(rows, 1)]


def steps_of(conn: sqlite3.Connection, run_id: str) -> list[StepRecord]:
    rows = conn.execute("SELECT * FROM steps WHERE run_id = ? ORDER BY rowid", (run_id,)).fetchall()
    return [row_to_step(r) for r in rows]
