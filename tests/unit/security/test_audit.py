"""Audit log: chain, paging, write failure, group commit, two writers (tampering: test_audit_tamper)."""

from __future__ import annotations

import asyncio
import itertools
import shutil
from pathlib import Path

import pytest

from services.common import InvalidArgument, Unavailable
from services.security import AuditFilter, AuditLog
from services.security._audit import GENESIS
from tests.unit.security.audit_util import KEYS, fill, open_log
from tests.unit.security.audit_util import tamper as tamper_file


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    audit = open_log(tmp_path / "audit.db")
    fill(audit)
    return audit


def tamper(log: AuditLog, sql: str, *args: object) -> None:
    tamper_file(log.path, sql, args=args)


def test_chain_links_and_verifies(log: AuditLog) -> None:
    records, _ = log.list(page_size=100, newest_first=False)
    assert [r.seq for r in records] == list(range(1, 11))
    assert records[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    result = log.verify()
    assert result.ok and result.checked == 10 and result.first_bad_seq is None


def test_records_are_sanitized(tmp_path: Path) -> None:
    log = open_log(tmp_path / "a.db")
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


def test_chain_continues_across_reopen(tmp_path: Path, log: AuditLog) -> None:
    log.close()
    again = open_log(Path(log.path))
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
    a = open_log(tmp_path / "shared.db")
    b = open_log(tmp_path / "shared.db")
    for i in range(6):
        (a if i % 2 else b).append(action="x", decision="ALLOW", request_id=str(i))
    result = a.verify()
    assert result.ok and result.checked == 6


async def test_group_commit_keeps_one_chain_and_fails_all_together(tmp_path: Path) -> None:
    log = open_log(tmp_path / "g.db")
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
    log = open_log(tmp_path / "a.db")
    rec = log.append(action="x", decision="ALLOW")
    log.log_anchor()
    log.log_anchor()  # unchanged head: not logged again
    log.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "vigil.security.audit"]
    assert lines == [f"audit chain head seq=0 hash={GENESIS}", f"audit chain head seq=1 hash={rec.hash}"]


def test_a_head_file_in_a_removed_directory_is_recreated_owner_only(tmp_path: Path) -> None:
    # The head file's directory is made when opening the file finds it missing (not checked
    # on every commit): a directory removed while the service runs comes back, 0700.
    from services.security._audit_anchor import HeadFile

    head = HeadFile(tmp_path / "gone" / "deeper" / "audit.head")
    with head.locked():
        head.append(KEYS, 1, "a" * 64)
    assert head.first_and_last() is not None
    shutil.rmtree(tmp_path / "gone")
    with head.locked():
        head.append(KEYS, 2, "b" * 64)
    assert (tmp_path / "gone").stat().st_mode & 0o777 == 0o700
    assert head.first_and_last()[1].seq == 2  # type: ignore[index]
