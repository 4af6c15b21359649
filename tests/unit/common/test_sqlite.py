"""open_sqlite (PRAGMAs, owner-only files) and migrate_sqlite (ordered, atomic, refuses newer)."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from services.common import Migration, SchemaTooNew, migrate_sqlite, open_sqlite

V1 = Migration(1, "t", "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, note TEXT NOT NULL);")
V2 = Migration(
    2,
    "t.extra and a row whose text holds ; and --",
    """
    -- a comment; with a semicolon
    ALTER TABLE t ADD COLUMN extra TEXT NOT NULL DEFAULT 'x;y';
    INSERT INTO t (note) VALUES ('semi; colon -- not a comment')
    """,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_a_new_file_and_its_directories_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "store.db"
    conn = open_sqlite(path, synchronous="NORMAL", busy_timeout_ms=1234)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")  # creates the -wal file
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (1234,)
    assert _mode(path) == 0o600
    assert _mode(Path(f"{path}-wal")) == 0o600
    assert _mode(tmp_path / "a") == 0o700 and _mode(tmp_path / "a" / "b") == 0o700
    conn.close()


def test_existing_files_and_directories_keep_their_mode(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    sqlite3.connect(path).close()
    os.chmod(path, 0o640)
    os.chmod(tmp_path, 0o750)
    open_sqlite(path, synchronous="FULL", busy_timeout_ms=10).close()
    assert _mode(path) == 0o640 and _mode(tmp_path) == 0o750


def test_bad_synchronous_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="FULL or NORMAL"):
        open_sqlite(tmp_path / "x.db", synchronous="OFF", busy_timeout_ms=10)


def test_migrations_apply_in_order_once(tmp_path: Path) -> None:
    conn = open_sqlite(tmp_path / "m.db", synchronous="NORMAL", busy_timeout_ms=1000)
    assert migrate_sqlite(conn, (V1,), what="test db", upgrade="the test") == [1]
    conn.execute("INSERT INTO t (note) VALUES ('kept')")
    assert migrate_sqlite(conn, (V1, V2), what="test db", upgrade="the test") == [2]
    assert migrate_sqlite(conn, (V1, V2), what="test db", upgrade="the test") == []
    assert _version(conn) == 2
    assert conn.execute("SELECT note, extra FROM t ORDER BY id").fetchall() == [
        ("kept", "x;y"),
        ("semi; colon -- not a comment", "x;y"),
    ]
    conn.close()


def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    conn = open_sqlite(tmp_path / "m.db", synchronous="NORMAL", busy_timeout_ms=1000)
    migrate_sqlite(conn, (V1,), what="test db", upgrade="the test")
    broken = Migration(2, "half", "ALTER TABLE t ADD COLUMN y TEXT; ALTER TABLE nope ADD COLUMN z TEXT")
    with pytest.raises(sqlite3.OperationalError, match="nope"):
        migrate_sqlite(conn, (V1, broken), what="test db", upgrade="the test")
    assert _version(conn) == 1 and not conn.in_transaction
    assert [r[1] for r in conn.execute("PRAGMA table_info(t)")] == ["id", "note"]  # y rolled back
    conn.close()


def test_a_newer_database_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    conn = open_sqlite(tmp_path / "m.db", synchronous="NORMAL", busy_timeout_ms=1000)
    migrate_sqlite(conn, (V1, V2), what="test db", upgrade="the test")
    with pytest.raises(
        SchemaTooNew, match=r"test db schema has version 2, unknown to this release \(knows up to 1\)"
    ):
        migrate_sqlite(conn, (V1,), what="test db", upgrade="the test")
    conn.close()


def test_misnumbered_migrations_are_a_programming_error(tmp_path: Path) -> None:
    conn = open_sqlite(tmp_path / "m.db", synchronous="NORMAL", busy_timeout_ms=1000)
    with pytest.raises(ValueError, match="numbered"):
        migrate_sqlite(conn, (V2, V1), what="test db", upgrade="the test")
    conn.close()


def test_processes_opening_together_apply_each_migration_once(tmp_path: Path) -> None:
    counting = Migration(2, "count", "CREATE TABLE applied (n INTEGER); INSERT INTO applied VALUES (1)")
    applied: list[list[int]] = []
    start = threading.Barrier(4)

    def opener() -> None:
        conn = open_sqlite(tmp_path / "m.db", synchronous="NORMAL", busy_timeout_ms=10_000)
        start.wait(10)
        applied.append(migrate_sqlite(conn, (V1, counting), what="test db", upgrade="the test"))
        conn.close()

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(v for a in applied for v in a) == [1, 2]
    with sqlite3.connect(tmp_path / "m.db") as conn:
        assert conn.execute("SELECT count(*) FROM applied").fetchone() == (1,)


def _open_together(path: Path, n: int) -> tuple[list[str], list[sqlite3.Error]]:
    """``n`` threads open ``path`` at the same moment: each one's journal mode, and the errors."""
    start, modes, errors = threading.Barrier(n), [], []

    def opener() -> None:
        start.wait(10)
        try:
            conn = open_sqlite(path, synchronous="NORMAL", busy_timeout_ms=10_000)
            modes.append(conn.execute("PRAGMA journal_mode").fetchone()[0])
            conn.close()
        except sqlite3.Error as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return modes, errors


def test_connections_opening_a_new_file_together_all_get_wal(tmp_path: Path) -> None:
    # Switching a new file to WAL needs an exclusive lock, and SQLite refuses one of two
    # connections that both hold a shared lock at once ("database is locked", no busy wait):
    # about 1 in 25 rounds failed before open_sqlite retried (replicas starting together).
    for round_ in range(100):
        modes, errors = _open_together(tmp_path / f"new-{round_}.db", 4)
        assert not errors and modes == ["wal"] * 4, (round_, errors)
