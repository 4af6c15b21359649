"""Audit log: hash chain, tamper detection (edit/remove/reorder/truncate), paging, write failure."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import sqlite3
from pathlib import Path

import pytest

from services.common import InvalidArgument, Unavailable
from services.security import AuditFilter, AuditLog
from services.security._audit import GENESIS


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        self.t += 1
        return self.t


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    audit = AuditLog(tmp_path / "audit.db", now=Clock())
    for i in range(10):
        audit.append(
            action="screen" if i % 2 else "authorize",
            resource=f"wf{i % 3}",
            decision="ALLOW" if i % 3 else "DENY",
            subject=f"user{i % 2}",
            reason=f"reason {i}",
            request_id=f"req-{i}",
        )
    return audit


def tamper(log: AuditLog, sql: str, *args: object) -> None:
    """Edit the database file behind the log's back, as an attacker with file access would."""
    conn = sqlite3.connect(log.path, isolation_level=None)
    conn.execute(sql, args)
    conn.close()


def test_chain_links_and_verifies(log: AuditLog) -> None:
    records, _ = log.list(page_size=100, newest_first=False)
    assert [r.seq for r in records] == list(range(1, 11))
    assert records[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    result = log.verify()
    assert result.ok and result.checked == 10 and result.first_bad_seq is None


def test_records_are_sanitized(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.db")
    secret = "vgl_0123456789ab_" + "x" * 40
    rec = log.append(
        action="screen",
        decision="DENY",
        subject="bob@example.com",
        reason=f"token {secret}",
        details={"ip": "10.1.2.3"},
    )
    assert (
        "bob@example.com" not in rec.subject
        and "vgl_0123" not in rec.reason
        and "10.1.2.3" not in rec.details
    )
    assert log.verify().ok


def test_resource_and_request_id_are_sanitized_and_found_by_their_raw_value(log: AuditLog) -> None:
    key, jwt = "ASIAZXCVBNMLKJHGFDSA", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    rec = log.append(action="authorize", decision="DENY", resource=f"files/{key}", request_id=jwt)
    assert (rec.resource, rec.request_id) == ("files/[REDACTED:aws_access_key]", "[REDACTED:jwt]")
    found, _ = log.list(AuditFilter(resource=f"files/{key}", request_id=jwt))
    assert [r.id for r in found] == [rec.id]
    raw = b"".join(p.read_bytes() for p in Path(log.path).parent.glob(Path(log.path).name + "*"))
    assert key.encode() not in raw and jwt.encode() not in raw
    assert log.verify().ok


@pytest.mark.parametrize(
    ("statements", "first_bad", "problem"),
    [
        (["UPDATE audit SET decision='ALLOW' WHERE seq=4"], 4, "record 4 was modified"),
        (["DELETE FROM audit WHERE seq=6"], 7, "missing"),
        # Swap the contents of records 3 and 5 (keeping their seq numbers): a reorder.
        (
            [
                "UPDATE audit SET seq=-3 WHERE seq=3",
                "UPDATE audit SET seq=3 WHERE seq=5",
                "UPDATE audit SET seq=5 WHERE seq=-3",
            ],
            3,
            "",
        ),
        (["DELETE FROM audit WHERE seq >= 9"], 9, "truncated"),
    ],
)
def test_tampering_is_detected_where_it_happened(
    log: AuditLog, statements: list[str], first_bad: int, problem: str
) -> None:
    for sql in statements:
        tamper(log, sql)
    result = log.verify()
    assert not result.ok and result.first_bad_seq == first_bad
    assert any(problem in p for p in result.problems)


def test_rehash_of_edited_record_still_breaks_the_next_link(log: AuditLog) -> None:
    records, _ = log.list(page_size=100, newest_first=False)
    forged = dataclasses.replace(records[3], reason="nothing to see")
    tamper(log, "UPDATE audit SET reason=?, hash=? WHERE seq=4", forged.reason, forged.expected_hash())
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 5
    assert "does not link" in result.problems[0]


def test_garbage_row_does_not_crash_verify(log: AuditLog) -> None:
    tamper(log, "UPDATE audit SET ts='not a number' WHERE seq=2")
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 2


def test_chain_continues_across_reopen(tmp_path: Path, log: AuditLog) -> None:
    log.close()
    again = AuditLog(log.path)
    again.append(action="x", decision="ALLOW")
    assert again.verify().ok and again.verify().checked == 11


def test_list_filters_and_pages(log: AuditLog) -> None:
    page, token = log.list(page_size=4)
    assert [r.seq for r in page] == [10, 9, 8, 7] and token == "7"
    page, token = log.list(page_size=4, page_token=token)
    assert [r.seq for r in page] == [6, 5, 4, 3]
    page, token = log.list(page_size=4, page_token=token)
    assert [r.seq for r in page] == [2, 1] and token == ""
    assert {r.subject for r in log.list(AuditFilter(subject="user1"))[0]} == {"user1"}
    assert {r.action for r in log.list(AuditFilter(action="screen"))[0]} == {"screen"}
    assert {r.decision for r in log.list(AuditFilter(decision="DENY"))[0]} == {"DENY"}
    assert [r.request_id for r in log.list(AuditFilter(request_id="req-3"))[0]] == ["req-3"]
    first = log.list(page_size=1, newest_first=False)[0][0]
    window = log.list(AuditFilter(since_ts=first.ts + 2, until_ts=first.ts + 4))[0]
    assert [r.seq for r in window] == [4, 3]


@pytest.mark.parametrize(
    ("size", "token"),
    [
        (-1, ""),
        (5000, ""),
        (10, "abc"),
        (10, "9" * 40),
        (10, "9" * 5000),
        (10, "\u00b2"),
        (10, "\u0661\u0662"),
    ],
)
def test_list_rejects_bad_paging(log: AuditLog, size: int, token: str) -> None:
    with pytest.raises(InvalidArgument):
        log.list(page_size=size, page_token=token)


def test_write_failure_refuses(log: AuditLog) -> None:
    # Fault injector at the storage layer: every insert now fails inside SQLite.
    tamper(log, "CREATE TRIGGER fail BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(Unavailable, match="refused"):
        log.append(action="screen", decision="ALLOW")
    tamper(log, "DROP TRIGGER fail")
    log.append(action="screen", decision="ALLOW")  # recovers once storage does
    assert log.verify().ok


def test_two_writers_on_one_file_keep_one_chain(tmp_path: Path) -> None:
    a = AuditLog(tmp_path / "shared.db")
    b = AuditLog(tmp_path / "shared.db")
    for i in range(6):
        (a if i % 2 else b).append(action="x", decision="ALLOW", request_id=str(i))
    result = a.verify()
    assert result.ok and result.checked == 6


async def test_group_commit_keeps_one_chain_and_fails_all_together(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "g.db")
    records = await asyncio.gather(
        *(log.append_async(action="screen", decision="ALLOW", request_id=str(i)) for i in range(20))
    )
    assert sorted(r.seq for r in records) == list(range(1, 21))
    assert log.verify().ok
    tamper(log, "CREATE TRIGGER fail BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    results = await asyncio.gather(
        *(log.append_async(action="screen", decision="ALLOW") for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, Unavailable) for r in results)
    tamper(log, "DROP TRIGGER fail")
    await log.append_async(action="screen", decision="ALLOW")
    result = log.verify()
    assert result.ok and result.checked == 21


def test_chain_head_is_logged_as_an_anchor_when_it_moves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="vigil.security.audit")
    log = AuditLog(tmp_path / "a.db")
    rec = log.append(action="x", decision="ALLOW")
    log.log_anchor()
    log.log_anchor()  # unchanged head: not logged again
    log.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "vigil.security.audit"]
    assert lines == [f"audit chain head seq=0 hash={GENESIS}", f"audit chain head seq=1 hash={rec.hash}"]
