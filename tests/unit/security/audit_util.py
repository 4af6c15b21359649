"""Shared pieces of the audit log tests: keys, a ticking clock, a log with ten records, tampering."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from services.security import AuditKeys, AuditLog

KEYS = AuditKeys({"k1": b"1" * 32}, "k1")


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        self.t += 1
        return self.t


def open_log(path: Path, keys: AuditKeys = KEYS) -> AuditLog:
    """The log at ``path`` with its head file beside it (as the service opens it)."""
    return AuditLog(path, keys=keys, head_file=path.with_name(path.name + ".head"), now=Clock())


def fill(log: AuditLog, count: int = 10) -> None:
    for i in range(count):
        log.append(
            action="screen" if i % 2 else "authorize",
            resource=f"wf{i % 3}",
            decision="ALLOW" if i % 3 else "DENY",
            subject=f"user{i % 2}",
            reason=f"reason {i}",
            request_id=f"req-{i}",
        )


def tamper(path: str | Path, *statements: str, args: tuple[object, ...] = ()) -> None:
    """Edit the database file behind the log's back, as an attacker with file access would."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    for sql in statements:
        conn.execute(sql, args if "?" in sql else ())
    conn.close()
