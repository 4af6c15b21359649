"""SQLite run store schema versions: a file from before versioning is adopted, a newer one refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from services.common import SchemaTooNew, migrate_sqlite, open_sqlite
from services.workflow._model import Lease, LeaseLost
from services.workflow._sqlite_schema import MIGRATIONS
from services.workflow._sqlite_store import SQLiteRunStore
from tests.unit.workflow.store_suite import V1_LEASED_RUN, new_run

# Frozen copy of the DDL the store ran on every open before schema versions existed (no
# user_version): files written by that release look exactly like this.
_UNVERSIONED_DDL = """
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


def test_migration_1_is_the_unversioned_schema_unedited() -> None:
    # Released migrations are append-only: a change to version 1 would skip files already at it.
    assert MIGRATIONS[0].sql.split() == _UNVERSIONED_DDL.split()


def _unversioned_file(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(_UNVERSIONED_DDL)
        conn.execute(
            "INSERT INTO runs (run_id, workflow, state, params, principal, priority, idempotency_key,"
            " request_hash, created_at, updated_at, labels, result)"
            " VALUES ('old-1', 'echo', 'SUCCEEDED', '{\"x\":1}', 'alice', 3, 'k1', 'h1', 10.0, 11.0,"
            ' \'{"team":"a"}\', \'{"y":2}\')'
        )
        conn.execute(
            "INSERT INTO steps (run_id, name, executions, completed, result) VALUES ('old-1', 's', 2, 1, '5')"
        )
    conn.close()


async def test_a_file_from_before_versioning_opens_with_its_runs_at_the_latest_version(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.db"
    _unversioned_file(path)
    store = SQLiteRunStore(path, clock=lambda: 20.0, synchronous="NORMAL")
    await store.open()
    try:
        old = await store.get_run("old-1")
        assert (old.state.value, old.params, old.labels, old.result, old.priority) == (
            "SUCCEEDED",
            {"x": 1},
            {"team": "a"},
            {"y": 2},
            3,
        )
        [step] = await store.get_steps("old-1")
        assert (step.name, step.executions, step.completed, step.result) == ("s", 2, True, 5)
        new, created = await store.create_run(new_run())
        assert created and new.seq > old.seq
        await store.probe()  # the probe table exists too
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (2,)
    conn.close()


async def test_a_file_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SQLiteRunStore(path, clock=lambda: 20.0, synchronous="NORMAL")
    await store.open()
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    newer = SQLiteRunStore(path, clock=lambda: 20.0, synchronous="NORMAL")
    with pytest.raises(
        SchemaTooNew, match=r"run store .*runs\.db schema has version .*upgrade the workflow service"
    ):
        await newer.open()
    await newer.close()


async def test_a_file_of_the_previous_version_gets_lease_epochs_and_its_runs_stay_claimable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.db"
    conn = open_sqlite(path, synchronous="NORMAL", busy_timeout_ms=1000)
    previous = MIGRATIONS[:-1]  # the release before lease epochs
    assert migrate_sqlite(conn, previous, what="previous", upgrade="-") == [m.version for m in previous]
    conn.execute(V1_LEASED_RUN)
    conn.close()
    store = SQLiteRunStore(path, clock=lambda: 20.0, synchronous="NORMAL")
    await store.open()
    try:
        old = await store.get_run("v1-run")
        assert (old.lease, old.state.value) == (Lease("old-replica", 0), "RUNNING")
        (claimed,) = await store.claim_runs("new-replica", now=20.0, lease_s=30.0, limit=10)
        assert claimed.lease == Lease("new-replica", 1)
        assert await store.begin_step("v1-run", "s", claimed.lease) == 1
        with pytest.raises(LeaseLost):
            await store.begin_step("v1-run", "s", Lease("old-replica", 0))
    finally:
        await store.close()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    check.close()
