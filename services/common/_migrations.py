"""Versioned schemas: ordered forward migrations, shared by the SQLite and PostgreSQL stores.

A store's migrations are a tuple of `Migration` numbered 1, 2, 3, ... and append-only: a
released migration is never edited, a change is a new entry with the next version. A
database remembers the last version applied (SQLite: ``PRAGMA user_version``; PostgreSQL:
rows in ``vigil_schema_migrations``, see `services.workflow._pg_schema`), and opening it
applies the missing ones in order. A database newer than the code is refused with
`SchemaTooNew`: an older release writing to it could corrupt what the newer one stored.

SQLite: each migration runs in its own ``BEGIN IMMEDIATE`` transaction together with the
``user_version`` bump (SQLite DDL is transactional, so a failing migration changes nothing),
and the version is re-read under that write lock, so two processes opening one file at the
same moment apply each migration once. Version 1 of each SQLite schema keeps the
``IF NOT EXISTS`` of the files written before versioning: such a file (``user_version`` 0,
tables present) is thereby adopted as version 1 with its rows; later migrations need none.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = ["Migration", "SchemaTooNew", "check_migrations", "migrate_sqlite", "schema_too_new"]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str
    """Statements separated by ``;``, without parameters and without BEGIN/COMMIT."""


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer release than this one."""


def schema_too_new(what: str, found: object, known: int, upgrade: str) -> SchemaTooNew:
    return SchemaTooNew(
        f"{what} schema has version {found}, unknown to this release (knows up to {known}); "
        f"upgrade {upgrade} or point it at another database"
    )


def check_migrations(migrations: Sequence[Migration]) -> int:
    """Check that ``migrations`` are numbered 1..N in order; returns N (the latest version)."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, 3, ... in order, got {versions}")
    return len(versions)


def migrate_sqlite(
    conn: sqlite3.Connection, migrations: Sequence[Migration], *, what: str, upgrade: str
) -> list[int]:
    """Bring ``conn``'s database to the latest of ``migrations``; returns the versions applied now.

    ``conn`` must be in autocommit mode (``isolation_level=None``, as `open_sqlite` makes it).

    Raises:
        SchemaTooNew: ``user_version`` is above every known migration (names ``what`` and
            the service to ``upgrade`` in the message).
    """
    latest = check_migrations(migrations)
    if _user_version(conn, what, latest, upgrade) == latest:
        return []  # the common case: no write lock taken
    applied: list[int] = []
    for m in migrations:
        conn.execute("BEGIN IMMEDIATE")  # another process migrating holds it; we then see its version
        try:
            if _user_version(conn, what, latest, upgrade) < m.version:
                for statement in _statements(m.sql):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {int(m.version)}")
                applied.append(m.version)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
    return applied


def _user_version(conn: sqlite3.Connection, what: str, latest: int, upgrade: str) -> int:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > latest:
        raise schema_too_new(what, version, latest, upgrade)
    return version


def _statements(script: str) -> Iterator[str]:
    """Split ``script`` into complete statements (a ``;`` inside a string or comment does not split)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                yield pending
            pending = ""
    if pending.strip(" \t\r\n;"):  # a trailing comment, or a statement SQLite will call incomplete
        yield pending[:-1] + "\n;"
