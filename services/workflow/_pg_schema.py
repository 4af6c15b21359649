"""Versioned schema of the PostgreSQL run store.

`MIGRATIONS` is append-only: a released migration is never edited, a change is a new
entry with the next version. `migrate` applies the missing ones in order, each with its row
in ``vigil_schema_migrations``, in one transaction (PostgreSQL DDL is transactional: a
failure leaves the schema as it was) under an advisory lock, so replicas starting at the
same moment apply each migration exactly once.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import tuple_row

from services.common import Migration, check_migrations, schema_too_new

__all__ = ["MIGRATIONS", "Migration", "applied_versions", "migrate"]

# Key of the advisory lock serializing migrations across replicas (any constant; "vigl").
_LOCK_KEY = 0x7669676C


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs and steps",
        """
        CREATE TABLE runs (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            run_id TEXT NOT NULL UNIQUE,
            workflow TEXT NOT NULL,
            state TEXT NOT NULL,
            params TEXT NOT NULL,
            principal TEXT NOT NULL,
            priority INTEGER NOT NULL,
            idempotency_key TEXT,
            request_hash TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            not_before DOUBLE PRECISION,
            deadline DOUBLE PRECISION,
            attempts INTEGER NOT NULL DEFAULT 0,
            result TEXT,
            error_category TEXT,
            error_message TEXT,
            fallback TEXT,
            degradation TEXT,
            labels JSONB NOT NULL DEFAULT '{}',
            schedule TEXT,
            audit_id TEXT NOT NULL DEFAULT '',
            redactions TEXT NOT NULL DEFAULT '{}',
            started_at DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            lease_owner TEXT,
            lease_expires DOUBLE PRECISION
        );
        CREATE UNIQUE INDEX runs_idempotency ON runs (principal, idempotency_key)
            WHERE idempotency_key IS NOT NULL;
        -- What claim_runs scans: unfinished runs in claim order.
        CREATE INDEX runs_open ON runs (priority DESC, seq) WHERE state IN ('PENDING', 'RUNNING');
        CREATE INDEX runs_workflow ON runs (workflow, seq);
        CREATE INDEX runs_labels ON runs USING GIN (labels jsonb_path_ops);
        CREATE TABLE steps (
            run_id TEXT NOT NULL,
            name TEXT NOT NULL,
            ord BIGINT GENERATED ALWAYS AS IDENTITY,
            executions INTEGER NOT NULL DEFAULT 0,
            completed BOOLEAN NOT NULL DEFAULT FALSE,
            result TEXT,
            finished_at DOUBLE PRECISION,
            PRIMARY KEY (run_id, name)
        );
        """,
    ),
    Migration(
        2,
        "run history, step timings and errors, trace ids and retries",
        """
        ALTER TABLE runs ADD COLUMN trace_id TEXT NOT NULL DEFAULT '';
        ALTER TABLE runs ADD COLUMN retry_of TEXT;
        ALTER TABLE runs ADD COLUMN resumed INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE steps ADD COLUMN started_at DOUBLE PRECISION;
        ALTER TABLE steps ADD COLUMN duration_s DOUBLE PRECISION;
        ALTER TABLE steps ADD COLUMN error_category TEXT;
        ALTER TABLE steps ADD COLUMN error_message TEXT;
        CREATE TABLE run_events (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            run_id TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            type TEXT NOT NULL,
            data TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX run_events_run ON run_events (run_id, id);
        """,
    ),
    Migration(
        3,
        "lease epochs: the fencing token of every run write",
        """
        -- Claims of the run so far (see services.workflow._model.Lease); runs of version 1
        -- start at 0 and count from their next claim.
        ALTER TABLE runs ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;
        """,
    ),
)


async def applied_versions(conn: psycopg.AsyncConnection[Any]) -> list[int]:
    """Versions recorded in ``vigil_schema_migrations`` (empty on a fresh database)."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute("SELECT to_regclass('vigil_schema_migrations') IS NOT NULL")
    row = await cur.fetchone()
    if row is None or not row[0]:
        return []
    await cur.execute("SELECT version FROM vigil_schema_migrations ORDER BY version")
    return [int(r[0]) for r in await cur.fetchall()]


async def migrate(
    conn: psycopg.AsyncConnection[Any], migrations: tuple[Migration, ...] = MIGRATIONS
) -> list[int]:
    """Apply the migrations the database lacks; returns the versions applied now.

    ``conn`` must be in autocommit mode (this opens its own transaction).

    Raises:
        SchemaTooNew: the database has a version this code does not know (a newer release
            migrated it; running older code against it could corrupt runs).
    """
    latest = check_migrations(migrations)
    applied_now: list[int] = []
    async with conn.transaction():
        # Held to the end of this transaction; other replicas wait here, then see our rows.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS vigil_schema_migrations ("
            " version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = set(await applied_versions(conn))
        unknown = sorted(v for v in done if v > latest)
        if unknown:
            raise schema_too_new("run store", unknown, latest, "the workflow service")
        for m in migrations:
            if m.version in done:
                continue
            await conn.execute(m.sql.encode())  # several statements, no parameters
            await conn.execute(
                "INSERT INTO vigil_schema_migrations (version, description) VALUES (%s, %s)",
                (m.version, m.description),
            )
            applied_now.append(m.version)
    return applied_now
