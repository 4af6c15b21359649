"""Every way of tampering with the audit log is reported, with the first bad position.

Each case edits the database (or the head file) behind the log's back, then checks a log
opened afresh (as after a restart: the in-process head cannot help) both at start-up (an
ERROR line and the ``vigil_audit_chain_ok`` gauge) and by `verify`. Truncation, emptying,
re-creation and re-hashing after an edit are the cases an unkeyed, unanchored chain missed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services.security import AuditKeys, AuditLog
from services.security._audit_chain import COLUMNS, AuditRecord, legacy_digest
from services.security._audit_schema import MIGRATIONS
from tests.unit.security.audit_util import fill, open_log, tamper

_V1_DDL = MIGRATIONS[0].sql
_V2_TABLE = _V1_DDL.replace(
    "hash TEXT NOT NULL\n", "hash TEXT NOT NULL,\n            key_id TEXT NOT NULL DEFAULT ''\n"
)


def _records(path: Path) -> list[AuditRecord]:
    log = open_log(path)
    try:
        return log.list(page_size=100, newest_first=False)[0]
    finally:
        log.close()


def _rewrite(path: Path, records: list[AuditRecord], mac: Callable[[AuditRecord], AuditRecord]) -> None:
    """Replace ``records`` in the file with versions chained anew by ``mac`` (an attacker's re-hash)."""
    prev = records[0].prev_hash
    for rec in records:
        forged = mac(dataclasses.replace(rec, prev_hash=prev))
        tamper(path, "UPDATE audit SET reason=?, prev_hash=?, hash=?, key_id=? WHERE seq=?",
               args=(forged.reason, forged.prev_hash, forged.hash, forged.key_id, forged.seq))  # fmt: skip
        prev = forged.hash


def _edit_then_rehash_legacy(path: Path) -> None:
    recs = _records(path)
    recs[3] = dataclasses.replace(recs[3], reason="nothing to see")

    def legacy(r: AuditRecord) -> AuditRecord:  # the old format: a plain digest anyone can compute
        r = dataclasses.replace(r, key_id="")
        return dataclasses.replace(r, hash=legacy_digest(dataclasses.astuple(r)[:-2]))

    _rewrite(path, recs[3:], legacy)
    # ... and claim every record predates keys.
    tamper(path, "UPDATE audit_meta SET value=10 WHERE name='legacy_until'")


def _edit_then_rehash_with_a_guessed_key(path: Path) -> None:
    recs = _records(path)
    recs[3] = dataclasses.replace(recs[3], reason="nothing to see")
    guess = AuditKeys({"k1": b"2" * 32}, "k1")

    def rekeyed(r: AuditRecord) -> AuditRecord:
        return dataclasses.replace(r, hash=guess.mac("k1", r.payload()))

    _rewrite(path, recs[3:], rekeyed)


def _append_forged_record(path: Path) -> None:
    last = _records(path)[-1]
    forged = dataclasses.replace(last, seq=11, id="forged", prev_hash=last.hash, hash="f" * 64)
    tamper(
        path,
        f"INSERT INTO audit ({COLUMNS}) VALUES ({', '.join('?' * 13)})",
        args=dataclasses.astuple(forged),
    )


def _unknown_key(path: Path) -> None:
    tamper(path, "UPDATE audit SET key_id='k9' WHERE seq=5")


def _reorder(path: Path) -> None:
    # Swap the contents of records 3 and 5 (keeping their seq numbers).
    tamper(path, "UPDATE audit SET seq=-3 WHERE seq=3", "UPDATE audit SET seq=3 WHERE seq=5",
           "UPDATE audit SET seq=5 WHERE seq=-3")  # fmt: skip


def _drop_and_recreate_v1(path: Path) -> None:
    tamper(path, "DROP TABLE audit", "DROP TABLE audit_meta", *_V1_DDL.split(";")[:-1])
    tamper(path, "ALTER TABLE audit ADD COLUMN key_id TEXT NOT NULL DEFAULT ''")


def _drop_and_recreate(path: Path) -> None:
    tamper(path, "DROP TABLE audit", *_V2_TABLE.split(";")[:-1])


def _forge_head_line(path: Path) -> None:
    head = path.with_name(path.name + ".head")
    with head.open("a") as f:
        f.write(json.dumps({"seq": 3, "mac": "0" * 64, "key_id": "k1", "sig": "0" * 64}) + "\n")


def _delete_head_file(path: Path) -> None:
    path.with_name(path.name + ".head").unlink()


_GONE = "records 1..10 were anchored but are gone"

CASES: list[tuple[str, Callable[[Path], None], int, str]] = [
    (
        "edit",
        lambda p: tamper(p, "UPDATE audit SET decision='ALLOW' WHERE seq=4"),
        4,
        "record 4 was modified",
    ),
    ("delete one", lambda p: tamper(p, "DELETE FROM audit WHERE seq=6"), 6, "records 6..6 are missing"),
    ("reorder", _reorder, 3, "does not link"),
    (
        "truncate the tail",
        lambda p: tamper(p, "DELETE FROM audit WHERE seq >= 9"),
        9,
        "anchored but are gone",
    ),
    (
        "delete all rows",
        lambda p: tamper(p, "DELETE FROM audit"),
        1,
        "records 1..10 were anchored but are gone",
    ),
    ("drop and re-create (old DDL)", _drop_and_recreate_v1, 1, _GONE),
    ("drop and re-create", _drop_and_recreate, 1, _GONE),
    (
        "edit, re-hash the rest as legacy",
        _edit_then_rehash_legacy,
        4,
        "no MAC key id after the legacy boundary 0",
    ),
    (
        "edit, re-MAC the rest with a guessed key",
        _edit_then_rehash_with_a_guessed_key,
        4,
        "record 4 was modified",
    ),
    ("append a forged record", _append_forged_record, 11, "record 11 was modified (MAC mismatch)"),
    ("unknown key id", _unknown_key, 5, "unknown key id 'k9'"),
    ("forged head line", _forge_head_line, 4, "head file line for seq 3 is forged"),
    ("delete the head file", _delete_head_file, 1, "was missing at start-up"),
]


def _chain_ok_gauge() -> float | None:
    return REGISTRY.get_sample_value("vigil_audit_chain_ok", {"log": "security"})


@pytest.mark.parametrize(("case", "attack", "first_bad", "problem"), CASES, ids=[c[0] for c in CASES])
def test_tampering_is_reported_at_the_first_bad_position(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    case: str,
    attack: Callable[[Path], None],
    first_bad: int,
    problem: str,
) -> None:
    path = tmp_path / "audit.db"
    log = open_log(path)
    fill(log)
    log.close()
    attack(path)
    caplog.set_level("ERROR", logger="vigil.security.audit")
    reopened = open_log(path)  # as after a restart
    result = reopened.verify()
    assert not result.ok, case
    assert result.first_bad_seq == first_bad, result.problems
    assert any(problem in p for p in result.problems), result.problems
    assert _chain_ok_gauge() == 0
    assert any("audit chain check failed" in r.getMessage() for r in caplog.records)
    reopened.close()


def test_an_untouched_log_verifies_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    log = open_log(path)
    fill(log)
    log.close()
    again = open_log(path)
    result = again.verify()
    assert result.ok and result.checked == 10, result.problems
    assert _chain_ok_gauge() == 1
    assert REGISTRY.get_sample_value("vigil_audit_head_seq", {"log": "security"}) == 10


@pytest.mark.parametrize(("sql", "cut"), [("DELETE FROM audit WHERE seq >= 7", 7), ("DELETE FROM audit", 1)])
def test_new_records_do_not_hide_a_truncation(tmp_path: Path, sql: str, cut: int) -> None:
    path = tmp_path / "audit.db"
    log = open_log(path)
    fill(log)
    log.close()
    tamper(path, sql)
    for _ in range(2):  # restarts, each writing on from the cut: the anchor line moves on
        log = open_log(path)
        fill(log, 5)
        log.close()
    result = open_log(path).verify()
    assert not result.ok and result.first_bad_seq == cut, result.problems
    assert any(p.startswith(f"records {cut}..") and "the chain went on below" in p for p in result.problems)


def test_truncation_is_reported_at_start_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "audit.db"
    log = open_log(path)
    fill(log)
    log.close()
    tamper(path, "DELETE FROM audit WHERE seq >= 8")
    caplog.set_level("ERROR", logger="vigil.security.audit")
    open_log(path).close()  # no verify: the start-up check alone
    lines = [r.getMessage() for r in caplog.records if "at start-up" in r.getMessage()]
    assert lines and "first bad seq=8" in lines[0]


def test_keys_rotate_by_key_id(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    old = AuditKeys({"k1": b"1" * 32}, "k1")
    log = open_log(path, old)
    fill(log, 3)
    log.close()
    rotated = AuditKeys({"k1": b"1" * 32, "k2": b"3" * 32}, "k2")
    log = open_log(path, rotated)
    fill(log, 3)
    records = log.list(page_size=10, newest_first=False)[0]
    assert [r.key_id for r in records] == ["k1"] * 3 + ["k2"] * 3
    assert log.verify().ok
    log.close()
    retired = AuditKeys({"k2": b"3" * 32}, "k2")  # k1 dropped too early
    log = open_log(path, retired)
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 1 and "unknown key id 'k1'" in result.problems[0]


def test_a_legacy_chain_verifies_up_to_its_boundary(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    tamper(path, *_V1_DDL.split(";")[:-1])  # a file from before keys (user_version 0)
    prev = "0" * 64
    for seq in range(1, 4):
        fields = (seq, f"id{seq}", 100.0 + seq, "", "alice", "screen", "wf", "ALLOW", "", "{}", prev)
        prev = legacy_digest(fields)
        tamper(path, "INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", args=(*fields, prev))
    log = open_log(path)  # migrates: legacy_until = 3, anchored in the new head file
    rec = log.append(action="screen", decision="DENY")
    assert rec.seq == 4 and rec.key_id == "k1" and rec.prev_hash == prev
    assert log.verify().ok
    log.close()
    tamper(path, "UPDATE audit SET subject='mallory' WHERE seq=2")  # a legacy record edited
    result = open_log(path).verify()
    assert result.first_bad_seq == 2 and "legacy record 2 was modified" in result.problems[0]


def test_a_legacy_rewrite_after_deleting_the_head_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    log = open_log(path)
    fill(log)
    log.close()
    _edit_then_rehash_legacy(path)  # the whole tail in the old format, boundary raised to 10 ...
    _delete_head_file(path)  # ... and the anchor that would tell
    result = open_log(path).verify()
    assert not result.ok and any("was missing at start-up" in p for p in result.problems)


def test_audit_key_and_head_files_are_owner_only(tmp_path: Path) -> None:
    from services.security import AuditKeyConfig

    keys = AuditKeys.load(AuditKeyConfig(key_file=tmp_path / "vigil" / "audit-key"))
    assert (tmp_path / "vigil").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "vigil" / "audit-key").stat().st_mode & 0o777 == 0o600
    again = AuditKeys.load(AuditKeyConfig(key_file=tmp_path / "vigil" / "audit-key"))
    assert again.signing_id == keys.signing_id == "k1"
    log = AuditLog(tmp_path / "vigil" / "a.db", keys=keys, head_file=tmp_path / "vigil" / "a.head")
    log.append(action="x", decision="ALLOW")
    log.close()
    assert (tmp_path / "vigil" / "a.head").stat().st_mode & 0o777 == 0o600


def test_a_missing_key_is_refused_where_generation_is_off(tmp_path: Path) -> None:
    from services.security import AuditKeyConfig, AuditKeyError

    with pytest.raises(AuditKeyError, match="cannot read"):
        AuditKeys.load(AuditKeyConfig(key_file=tmp_path / "nope", generate_missing=False))
    with pytest.raises(AuditKeyError, match="fewer than 32"):
        AuditKeys.parse("signing: a\nkeys:\n  a: c2hvcnQ=\n", "t")
    with pytest.raises(AuditKeyError, match="not set"):
        AuditKeys.load(AuditKeyConfig(key_env="VIGIL_NO_SUCH_KEY"), environ={})


def test_a_record_mac_covers_the_documented_canonical_encoding(tmp_path: Path) -> None:
    # Records written before stay verifiable: the payload is byte for byte what it was
    # (json.dumps of [seq, id, repr(ts), ..., prev_hash, key_id], compact, not ASCII-escaped).
    import hashlib
    import hmac
    import json

    log = open_log(tmp_path / "audit.db")
    try:
        rec = log.append(action="screen", resource="wf", decision="ALLOW", subject="ü", reason="r")
    finally:
        log.close()
    fields = [rec.seq, rec.id, repr(rec.ts), rec.request_id, rec.subject, rec.action, rec.resource,
              rec.decision, rec.reason, rec.details, rec.prev_hash, rec.key_id]  # fmt: skip
    payload = (
        b"vigil-audit-record-v2\n" + json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert rec.hash == hmac.new(b"1" * 32, payload, hashlib.sha256).hexdigest()
