"""SQLite connections as every Vigil store uses them, and the two ways a batch runs on one.

`open_sqlite` is the one place that sets the PRAGMAs (WAL, synchronous, busy timeout) and
creates a missing database file owner-only (0600, its missing directories 0700: a run's
parameters and the audit trail are nobody else's to read; SQLite gives the -wal and -shm
files the database file's mode). `run_in_savepoints` and `run_each` are the handlers a
`BatchWriter` thread calls with a batch of operations.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["SYNCHRONOUS_MODES", "create_private_dirs", "open_sqlite", "run_each", "run_in_savepoints"]

SYNCHRONOUS_MODES = ("FULL", "NORMAL")
"""FULL fsyncs every commit (survives power loss); NORMAL in WAL mode survives a process crash only."""

SQLiteOp = Callable[[sqlite3.Connection], Any]


def open_sqlite(
    path: str | Path, *, synchronous: str, busy_timeout_ms: int, wal_limit_bytes: int | None = None
) -> sqlite3.Connection:
    """Connect to ``path`` (created 0600 if missing) in WAL mode; the caller issues BEGIN/COMMIT.

    The connection may be used from any one thread at a time (``check_same_thread=False``):
    each store hands it to one writer thread or guards it with a lock.

    ``wal_limit_bytes`` bounds the write-ahead log: a checkpoint starts once the WAL holds
    half of it (``wal_autocheckpoint``) and a reset WAL is truncated back to it
    (``journal_size_limit``); without it SQLite's defaults apply (1000 pages, never truncated).
    """
    if synchronous not in SYNCHRONOUS_MODES:
        raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
    target = str(path)
    if target != ":memory:":
        _create_private(Path(target))
    # isolation_level=None: no implicit transactions; the stores batch statements themselves.
    conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        _enable_wal(conn, busy_timeout_ms / 1000)
        conn.execute(f"PRAGMA synchronous={synchronous}")
        if wal_limit_bytes is not None:
            page = int(conn.execute("PRAGMA page_size").fetchone()[0])
            conn.execute(f"PRAGMA journal_size_limit={int(wal_limit_bytes)}")
            conn.execute(f"PRAGMA wal_autocheckpoint={max(16, int(wal_limit_bytes) // page // 2)}")
    except BaseException:
        conn.close()
        raise
    return conn


def _enable_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Put the file in WAL mode (a no-op once it is), retrying while another connection holds it.

    Switching a new file to WAL takes an exclusive lock, and SQLite answers "database is
    locked" at once, without its busy handler, to a connection that would deadlock waiting for
    it (two processes opening a new file together both hold a shared lock). Replicas started
    at once on one new store file did that; the loser retries until ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def create_private_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents owner-only (0700); leave existing ones as they are."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    for missing_dir in reversed(missing):  # outermost first
        with contextlib.suppress(FileExistsError):  # another process got there first
            missing_dir.mkdir(mode=0o700)


def _create_private(path: Path) -> None:
    """Create ``path``'s missing directories (0700) and the file itself (0600); leave existing ones."""
    create_private_dirs(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def run_in_savepoints(
    conn: sqlite3.Connection, ops: Sequence[SQLiteOp], wrap: Callable[[Exception], Exception]
) -> list[Any]:
    """Run ``ops`` in one transaction, each inside its own SAVEPOINT; one outcome per op.

    An op that raises is undone alone (its outcome is ``wrap(error)``) while its neighbours
    commit, so one failing request (a domain error such as AlreadyExists) costs the others
    nothing. If the transaction itself fails (BEGIN, a savepoint or COMMIT: a full disk, a
    lock timeout) it is rolled back and ``wrap(error)`` is raised: nothing of it was committed.
    """
    outcomes: list[Any] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        for op in ops:
            conn.execute("SAVEPOINT op")
            try:
                outcomes.append(op(conn))
                conn.execute("RELEASE op")
            except Exception as exc:  # an error of this one operation: undo only it
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                outcomes.append(wrap(exc))
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the writer thread must live on whatever happens
                conn.execute("ROLLBACK")
        raise wrap(exc) from None
    return outcomes


def run_each(
    conn: sqlite3.Connection, ops: Sequence[SQLiteOp], wrap: Callable[[Exception], Exception]
) -> list[Any]:
    """Run ``ops`` one after the other outside any explicit transaction (readers); one outcome per op."""
    outcomes: list[Any] = []
    for op in ops:
        try:
            outcomes.append(op(conn))
        except Exception as exc:
            outcomes.append(wrap(exc))
    return outcomes
