"""Audit log schema versions: a file from before versioning keeps its chain, a newer one is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from services.common import SchemaTooNew
from services.security._audit_chain import GENESIS, legacy_digest
from services.security._audit_schema import MIGRATIONS
from tests.unit.security.audit_util import open_log

_V1_COLUMNS = "seq, id, ts, request_id, subject, action, resource, decision, reason, details, prev_hash, hash"

# Frozen copy of the DDL the log ran on every open before schema versions existed (no
# user_version): files written by that release look exactly like this.
_UNVERSIONED_DDL = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_subject ON audit(subject, seq);
CREATE INDEX IF NOT EXISTS audit_request ON audit(request_id);
"""


def test_migration_1_is_the_unversioned_schema_unedited() -> None:
    # Released migrations are append-only: a change to version 1 would skip files already at it.
    assert MIGRATIONS[0].sql.split() == _UNVERSIONED_DDL.split()


def _unversioned_file(path: Path, records: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(_UNVERSIONED_DDL)
        prev = GENESIS
        for seq in range(1, records + 1):
            fields = (
                seq,
                f"id{seq}",
                100.0 + seq,
                f"req-{seq}",
                "alice",
                "screen",
                "wf",
                "ALLOW",
                "",
                "{}",
                prev,
            )
            prev = legacy_digest(fields)
            conn.execute(f"INSERT INTO audit ({_V1_COLUMNS}) VALUES ({', '.join('?' * 12)})", (*fields, prev))
    conn.close()


def test_a_file_from_before_versioning_keeps_its_chain_at_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _unversioned_file(path, 5)
    log = open_log(path)
    assert log.head[0] == 5
    rec = log.append(action="screen", decision="DENY")
    assert rec.seq == 6
    result = log.verify()
    assert result.ok and result.checked == 6
    log.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    conn.close()


def test_a_file_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    open_log(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(
        SchemaTooNew, match=r"audit log .*audit\.db schema has version .*upgrade the security service"
    ):
        open_log(path)


def test_a_new_log_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "private" / "audit.db"
    open_log(path).close()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
