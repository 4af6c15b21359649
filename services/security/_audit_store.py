"""Where audit records are stored: the `AuditStore` interface and its SQLite implementation.

A store appends one batch at a time *serialized with every other writer of the same
database*, in any process: it takes the database's write lock first (SQLite ``BEGIN
IMMEDIATE``; PostgreSQL an advisory transaction lock), reads the head inside that
transaction, and only then computes and inserts the batch's records. So replicas sharing
one database extend one sequence and never fork the chain.
"""

from __future__ import annotations

import contextlib
import dataclasses
import operator
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, Protocol

from services.common import migrate_sqlite, open_sqlite
from services.security._audit_chain import COLUMNS, GENESIS, AuditRecord
from services.security._audit_schema import MIGRATIONS

__all__ = ["AuditStore", "AuditStoreError", "SqliteAuditStore"]

Chain = Callable[[tuple[int, str]], list[AuditRecord]]
"""Given the head (seq, MAC) read inside the write transaction, the records to insert."""

_KEYED_SCHEMA = 2  # the migration that added key ids
_INSERT_ARGS = ", ".join("?" * len(COLUMNS.split(",")))


class AuditStoreError(Exception):
    """The database failed (unreachable, locked too long, full, malformed); nothing was written."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(type(exc).__name__)
        self.kind = type(exc).__name__


class AuditStore(Protocol):
    """What `AuditLog` needs of a database; every method raises `AuditStoreError` on failure."""

    name: str
    """For messages: the file or the database."""

    def append(self, chain: Chain) -> list[AuditRecord]: ...
    def head(self) -> tuple[int, str]: ...
    def legacy_until(self) -> int: ...

    adopting_keys: bool
    """True when this open migrated an unkeyed log to keyed records (it has no head file yet)."""

    def record_at(self, seq: int) -> tuple[Any, ...] | None: ...
    def select(self, where: Sequence[str], args: Sequence[Any], newest_first: bool, limit: int) -> list[Any]:
        """Rows in `COLUMNS` order; ``where`` clauses use ``?`` placeholders."""
        ...

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """Every row in seq order, read without blocking writers."""
        ...

    def probe(self) -> bool: ...
    def close(self) -> None: ...


@contextlib.contextmanager
def _wrapped() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise AuditStoreError(exc) from None


class SqliteAuditStore:
    """The audit table in one SQLite file (created 0600), shared by the processes that open it."""

    def __init__(
        self, path: str, *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL", busy_timeout_ms: int = 5000
    ) -> None:
        self.name = self.path = path
        # busy_timeout: a writer waits this long for another process's transaction.
        self._conn = open_sqlite(path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
        try:
            applied = migrate_sqlite(
                self._conn, MIGRATIONS, what=f"audit log {path}", upgrade="the security service"
            )
            self.adopting_keys = _KEYED_SCHEMA in applied
        except BaseException:
            self._conn.close()
            raise

    def append(self, chain: Chain) -> list[AuditRecord]:
        conn = self._conn
        with _wrapped():
            try:
                conn.execute("BEGIN IMMEDIATE")  # the write lock first: the head read next is final
                records = chain(self._head())
                conn.executemany(
                    f"INSERT INTO audit ({COLUMNS}) VALUES ({_INSERT_ARGS})",
                    [_row(r) for r in records],
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
        return records

    def _head(self) -> tuple[int, str]:
        row = self._conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    def head(self) -> tuple[int, str]:
        with _wrapped():
            return self._head()

    def legacy_until(self) -> int:
        with _wrapped():
            try:
                row = self._conn.execute("SELECT value FROM audit_meta WHERE name='legacy_until'").fetchone()
            except sqlite3.OperationalError:  # the table was dropped: no record may be legacy
                return 0
        return int(row[0]) if row else 0

    def record_at(self, seq: int) -> tuple[Any, ...] | None:
        with _wrapped():
            row = self._conn.execute(f"SELECT {COLUMNS} FROM audit WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else tuple(row)

    def select(self, where: Sequence[str], args: Sequence[Any], newest_first: bool, limit: int) -> list[Any]:
        sql = f"SELECT {COLUMNS} FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY seq {'DESC' if newest_first else 'ASC'} LIMIT ?"
        with _wrapped():
            return self._conn.execute(sql, [*args, limit]).fetchall()

    def rows(self) -> Iterator[tuple[Any, ...]]:
        if self.path == ":memory:":
            with _wrapped():
                yield from self._conn.execute(f"SELECT {COLUMNS} FROM audit ORDER BY seq").fetchall()
            return
        # Its own read-only connection: WAL readers do not block the writer.
        with _wrapped():
            reader = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            try:
                yield from reader.execute(f"SELECT {COLUMNS} FROM audit ORDER BY seq")
            finally:
                reader.close()

    def probe(self) -> bool:
        """Check that a record could be written now, without writing one (insert, then roll back)."""
        dummy = AuditRecord(-1, "probe", 0.0, "", "", "", "", "", "", "{}", GENESIS, "")
        try:
            self._conn.execute("SAVEPOINT probe")
            try:
                self._conn.execute(f"INSERT INTO audit ({COLUMNS}) VALUES ({_INSERT_ARGS})", _row(dummy))
            finally:
                self._conn.execute("ROLLBACK TO probe")
                self._conn.execute("RELEASE probe")
        except sqlite3.Error:
            return False
        return True

    def close(self) -> None:
        self._conn.close()


# The dataclass's fields are in COLUMNS order; all scalars, so no deep copy (astuple) is needed.
_row: Callable[[AuditRecord], tuple[Any, ...]] = operator.attrgetter(
    *(f.name for f in dataclasses.fields(AuditRecord))
)
