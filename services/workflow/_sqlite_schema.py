"""Versioned schema of the SQLite run store (the versioning rules: `services.common._migrations`).

`MIGRATIONS` is append-only, numbered like the PostgreSQL store's (`_pg_schema`); a change
is a new entry with the next version, applied by `SQLiteRunStore.open`. Version 1 is the
schema from before versioning and keeps its ``IF NOT EXISTS`` so such a file is adopted.
"""

from __future__ import annotations

from services.common import Migration

__all__ = ["MIGRATIONS"]

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs, steps and the store probe",
        """
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
        """,
    ),
    Migration(
        2,
        "run history (GetRunHistory), step timings and errors, trace ids and retries",
        """
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
        """,
    ),
    Migration(
        3,
        "lease epochs (the fencing token of run writes), pre-allocated pages",
        """
        -- Claims of the run so far (see services.workflow._model.Lease); runs of version 1
        -- start at 0 and count from their next claim.
        ALTER TABLE runs ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
        -- Scratch rows the idle writer inserts and deletes to keep free pages allocated in the
        -- file (StoreSpaceConfig.preallocate_mb); empty between two statements.
        CREATE TABLE space_reserve (id INTEGER PRIMARY KEY, pad BLOB);
        """,
    ),
)
