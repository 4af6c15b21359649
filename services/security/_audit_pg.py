"""The audit log in PostgreSQL (``audit.backend: postgres``): one chain for every replica.

Same record format and chain as the SQLite store. Appends are serialized across all
replicas by a transaction-scoped advisory lock taken before the head is read, so the
replicas of every pod extend one sequence. The schema is versioned like the run store's
(its own table, ``vigil_audit_schema_migrations``, so the audit log may share a database
with the run store).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from services.common import ConfigModel, Migration, check_migrations, schema_too_new
from services.security._audit_chain import COLUMNS, GENESIS, AuditRecord
from services.security._audit_store import AuditStoreError, Chain

if TYPE_CHECKING:
    # Imported where a connection is made, not here: healthd and the security service read
    # `AuditPostgresConfig` (and import this module) with the sqlite backend too, and psycopg
    # with libpq is about 8 MB of resident memory a process without PostgreSQL need not pay.
    import psycopg

__all__ = ["MIGRATIONS", "AuditPostgresConfig", "PostgresAuditStore"]

# Advisory lock keys: one serializes appends, one migrations ("vgau", "vgam").
_APPEND_LOCK = 0x76676175
_MIGRATE_LOCK = 0x7667616D
_INSERT = f"INSERT INTO audit ({COLUMNS}) VALUES ({', '.join(['%s'] * len(COLUMNS.split(',')))})"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "MAC-chained audit records",
        """
        CREATE TABLE audit (
            seq BIGINT PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            ts DOUBLE PRECISION NOT NULL,
            request_id TEXT NOT NULL,
            subject TEXT NOT NULL,
            action TEXT NOT NULL,
            resource TEXT NOT NULL,
            decision TEXT NOT NULL,
            reason TEXT NOT NULL,
            details TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL,
            key_id TEXT NOT NULL
        );
        CREATE INDEX audit_subject ON audit (subject, seq);
        CREATE INDEX audit_request ON audit (request_id);
        """,
    ),
)


class AuditPostgresConfig(ConfigModel):
    """Connection to the PostgreSQL database the security replicas share for the audit log."""

    dsn: str = Field(default="host=127.0.0.1 port=5432 dbname=vigil user=vigil", min_length=1)
    """libpq connection string (``key=value`` pairs or a ``postgresql://`` URL) without the password."""
    password_file: Path | None = None
    """File holding the password (a mounted Secret); unset: none, or libpq's own sources."""
    connect_timeout_s: float = Field(default=10.0, gt=0, le=600)
    """How long one connection attempt waits for the database."""


@contextlib.contextmanager
def _wrapped() -> Iterator[None]:
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raise AuditStoreError(exc) from None


class PostgresAuditStore:
    """The audit table in PostgreSQL; one connection for writes, one per verify walk.

    Not thread-safe on its own: `AuditLog` calls it under its lock (``rows`` excepted,
    which opens a connection of its own).
    """

    def __init__(self, config: AuditPostgresConfig) -> None:
        self._config = config
        self.name = "PostgreSQL audit log"
        self._conn: psycopg.Connection[Any] | None = None
        self.adopting_keys = False  # keyed from its first version
        with _wrapped():
            migrate(self._connection())

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        password = None
        if self._config.password_file is not None:
            password = self._config.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        extra: dict[str, Any] = {"connect_timeout": max(1, round(self._config.connect_timeout_s))}
        if password is not None:
            extra["password"] = password
        return psycopg.connect(self._config.dsn, autocommit=True, **extra)

    def _connection(self) -> psycopg.Connection[Any]:
        """The write connection, re-opened when the previous one broke (a database restart)."""
        if self._conn is None or self._conn.broken or self._conn.closed:
            if self._conn is not None:
                self._conn.close()
            self._conn = self._connect()
        return self._conn

    def append(self, chain: Chain) -> list[AuditRecord]:
        with _wrapped():
            conn = self._connection()
            with conn.transaction():
                # Every replica waits here: the head read next is the final one for this batch.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_APPEND_LOCK,))
                records = chain(_head(conn))
                with conn.cursor() as cur:
                    cur.executemany(_INSERT, [dataclasses.astuple(r) for r in records])
        return records

    def head(self) -> tuple[int, str]:
        with _wrapped():
            return _head(self._connection())

    def legacy_until(self) -> int:
        return 0  # this schema was keyed from its first version

    def record_at(self, seq: int) -> tuple[Any, ...] | None:
        with _wrapped():
            row = self._connection().execute(f"SELECT {COLUMNS} FROM audit WHERE seq = %s", (seq,)).fetchone()
        return None if row is None else tuple(row)

    def select(self, where: Sequence[str], args: Sequence[Any], newest_first: bool, limit: int) -> list[Any]:
        sql = f"SELECT {COLUMNS} FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(w.replace("?", "%s") for w in where)
        sql += f" ORDER BY seq {'DESC' if newest_first else 'ASC'} LIMIT %s"
        with _wrapped():
            return self._connection().execute(sql.encode(), [*args, limit]).fetchall()

    def rows(self) -> Iterator[tuple[Any, ...]]:
        with _wrapped(), self._connect() as reader, reader.transaction(), reader.cursor(name="walk") as cur:
            cur.itersize = 2000
            cur.execute(f"SELECT {COLUMNS} FROM audit ORDER BY seq")
            yield from cur

    def probe(self) -> bool:
        import psycopg

        dummy = AuditRecord(-1, "probe", 0.0, "", "", "", "", "", "", "{}", GENESIS, "", "")
        try:
            conn = self._connection()
            with conn.transaction(force_rollback=True):
                conn.execute(_INSERT, dataclasses.astuple(dummy))
        except psycopg.Error:
            return False
        return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _head(conn: psycopg.Connection[Any]) -> tuple[int, str]:
    row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


def migrate(conn: psycopg.Connection[Any], migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the audit migrations the database lacks, under an advisory lock (replicas start together)."""
    latest = check_migrations(migrations)
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS vigil_audit_schema_migrations ("
            " version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = {int(r[0]) for r in conn.execute("SELECT version FROM vigil_audit_schema_migrations")}
        unknown = sorted(v for v in done if v > latest)
        if unknown:
            raise schema_too_new("audit log", unknown, latest, "the security service")
        for m in migrations:
            if m.version not in done:
                conn.execute(m.sql.encode())
                conn.execute(
                    "INSERT INTO vigil_audit_schema_migrations (version, description) VALUES (%s, %s)",
                    (m.version, m.description),
                )
                applied.append(m.version)
    return applied
