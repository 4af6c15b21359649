"""The audit chain's record format and its verification, whatever database stores it.

Each record carries the MAC of the record before it (``prev_hash``) and its own MAC
(``hash``) over all of its fields, its sequence number and key id included, computed
with the key ``key_id`` names (`AuditKeys`). So editing a record breaks its MAC, removing
one leaves a gap in ``seq`` and a broken link, reordering breaks both, and re-computing
MACs after an edit needs a key the database does not hold. Truncating the tail or
emptying the table is caught by the anchor (`services.security._audit_anchor`).

Records written before keys existed (``key_id`` empty) carry a plain SHA-256 digest and
verify as *legacy* up to the boundary marked when the keyed schema was adopted
(``legacy_until``); an unkeyed record after it is a forgery.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from services.security._audit_keys import AuditKeys

__all__ = ["GENESIS", "AuditRecord", "ChainWalk", "VerifyResult", "chain_rows", "legacy_digest"]

GENESIS = "0" * 64
COLUMNS = (
    "seq, id, ts, request_id, subject, action, resource, decision, reason, details, prev_hash, hash, key_id"
)
_MAC_DOMAIN = b"vigil-audit-record-v2\n"

# A record's fields before it has a chain position: id, ts, request_id, subject, action,
# resource, decision, reason, details (JSON).
Prepared = tuple[str, float, str, str, str, str, str, str, str]


@dataclass(frozen=True)
class AuditRecord:
    """One audit entry as stored."""

    seq: int
    id: str
    ts: float
    request_id: str
    subject: str
    """Who: the principal's subject, or ``anonymous``."""
    action: str
    """What: ``authenticate``, ``authorize``, ``screen``, ``validate``, ``audit.list``, ..."""
    resource: str
    """On what: e.g. the workflow name or the policy action."""
    decision: str
    """``ALLOW`` or ``DENY``."""
    reason: str
    details: str
    """Sanitized JSON object."""
    prev_hash: str
    hash: str
    """The record's MAC (keyed records) or SHA-256 digest (legacy records)."""
    key_id: str = ""
    """Id of the key that MAC'd the record; empty for a legacy (unkeyed) record."""

    def contents(self) -> tuple[Any, ...]:
        """seq .. prev_hash: every field but the MAC and its key id (all scalars, so a plain
        tuple of them is what ``dataclasses.astuple`` gave, at a fraction of its cost)."""
        return (self.seq, self.id, self.ts, self.request_id, self.subject, self.action, self.resource,
                self.decision, self.reason, self.details, self.prev_hash)  # fmt: skip

    def payload(self) -> bytes:
        """What the MAC covers: every field but the MAC itself, canonically encoded."""
        return mac_payload(self.contents(), self.key_id)

    def legacy_hash(self) -> str:
        """The plain digest an unkeyed record of these contents carries."""
        return legacy_digest(self.contents())

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> AuditRecord:
        """A record from a row in `COLUMNS` order (TypeError/ValueError when a field is malformed)."""
        seq, rid, ts, req, subj, action, resource, decision, reason, details, prev, h, key_id = row
        if isinstance(ts, str):
            raise ValueError("ts is text")
        return cls(int(seq), str(rid), float(ts), str(req), str(subj), str(action), str(resource),
                   str(decision), str(reason), str(details), str(prev), str(h), str(key_id))  # fmt: skip


# What json.dumps(..., separators=(",", ":"), ensure_ascii=False) builds on every call.
_CANONICAL = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _canonical(fields: tuple[Any, ...]) -> bytes:
    seq, rid, ts, *rest = fields
    return _CANONICAL.encode([seq, rid, repr(ts), *rest]).encode("utf-8", "surrogatepass")


def mac_payload(contents: tuple[Any, ...], key_id: str) -> bytes:
    """What a keyed record's MAC covers: its `AuditRecord.contents` and key id, canonically encoded."""
    return _MAC_DOMAIN + _canonical((*contents, key_id))


def legacy_digest(fields: tuple[Any, ...]) -> str:
    """SHA-256 of an unkeyed record's fields (seq .. prev_hash): the format before keys."""
    return hashlib.sha256(_canonical(fields)).hexdigest()


def chain_rows(head: tuple[int, str], batch: Iterable[Prepared], keys: AuditKeys) -> list[AuditRecord]:
    """Give ``batch`` the chain positions after ``head`` (seq, MAC) and MAC each with the signing key."""
    seq, prev = head
    key_id = keys.signing_id
    records = []
    for prepared in batch:
        seq += 1
        mac = keys.mac(key_id, mac_payload((seq, *prepared, prev), key_id))
        records.append(AuditRecord(seq, *prepared, prev, mac, key_id))
        prev = mac
    return records


@dataclass
class VerifyResult:
    """Outcome of a chain check. ``first_bad_seq`` is where the chain first fails (None when ok)."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problems: list[str] = field(default_factory=list)
    head: tuple[int, str] = (0, GENESIS)
    """(seq, MAC) of the last record walked."""

    def fail(self, seq: int, problem: str) -> None:
        if self.first_bad_seq is None or seq < self.first_bad_seq:
            self.first_bad_seq = seq
        if len(self.problems) < 20:
            self.problems.append(problem)
        self.ok = False


class ChainWalk:
    """Checks records fed in ``seq`` order: each one's MAC (or legacy digest) and its link."""

    def __init__(self, keys: AuditKeys, legacy_until: int) -> None:
        self._keys, self._legacy_until = keys, legacy_until
        self.result = VerifyResult(ok=True, checked=0)

    def row(self, row: tuple[Any, ...]) -> None:
        result = self.result
        prev_seq, prev_hash = result.head
        result.checked += 1
        try:
            rec = AuditRecord.from_row(row)
        except (TypeError, ValueError):
            result.fail(prev_seq + 1, f"record after seq {prev_seq} has malformed fields")
            result.head = (prev_seq + 1, "")
            return
        if rec.seq != prev_seq + 1:
            result.fail(prev_seq + 1, f"records {prev_seq + 1}..{rec.seq - 1} are missing (removed)")
        if rec.prev_hash != prev_hash:
            result.fail(
                rec.seq, f"record {rec.seq} does not link to record {prev_seq} (removed or reordered)"
            )
        if not rec.key_id:
            if rec.seq > self._legacy_until:
                result.fail(rec.seq, f"record {rec.seq} has no MAC key id after the legacy boundary "
                                     f"{self._legacy_until} (forged)")  # fmt: skip
            elif rec.legacy_hash() != rec.hash:
                result.fail(rec.seq, f"legacy record {rec.seq} was modified (hash mismatch)")
        elif not self._keys.knows(rec.key_id):
            result.fail(rec.seq, f"record {rec.seq} is signed with unknown key id {rec.key_id!r}")
        elif not self._keys.matches(rec.key_id, rec.payload(), rec.hash):
            result.fail(rec.seq, f"record {rec.seq} was modified (MAC mismatch)")
        result.head = (rec.seq, rec.hash)

    def unreadable(self, exc: Exception) -> None:
        seq = self.result.head[0]
        self.result.fail(seq + 1, f"audit log unreadable after record {seq}: {type(exc).__name__}")
