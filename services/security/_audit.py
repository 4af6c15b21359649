"""Hash-chained audit log in SQLite.

Each record stores the hash of the record before it and its own hash over all of its
fields (its sequence number included), so editing a record breaks its hash, removing
one leaves a gap in ``seq`` and a broken ``prev_hash`` link, and reordering breaks
both. Text is sanitized before it is hashed and stored. A write that fails raises
`Unavailable`: callers must refuse the decision rather than let a request through
unaudited.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Required, TypedDict, Unpack

from services.common import (
    BatchWriter,
    InvalidArgument,
    Unavailable,
    get_logger,
    migrate_sqlite,
    open_sqlite,
)
from services.security._audit_schema import MIGRATIONS
from services.security._auditgroup import submit_record
from services.security._sanitize import Redactor
from services.security._telemetry import AUDIT_EVENTS

__all__ = ["GENESIS", "AuditEntry", "AuditFilter", "AuditLog", "AuditRecord", "VerifyResult"]

GENESIS = "0" * 64
_log = get_logger("vigil.security.audit")
_MAX_PAGE = 1000
_COLUMNS = "seq, id, ts, request_id, subject, action, resource, decision, reason, details, prev_hash, hash"


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

    def expected_hash(self) -> str:
        """The hash this record's contents call for (differs from ``hash`` when edited)."""
        return _digest(dataclasses.astuple(self)[:-1])


def _digest(fields: tuple[Any, ...]) -> str:
    """SHA-256 over every field but the hash itself, in a canonical JSON encoding."""
    seq, rid, ts, *rest = fields
    payload = json.dumps([seq, rid, repr(ts), *rest], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


# A record's fields before it has a chain position: id, ts, request_id, subject, action,
# resource, decision, reason, details (JSON).
_Prepared = tuple[str, float, str, str, str, str, str, str, str]


class AuditEntry(TypedDict, total=False):
    """What a caller supplies for one record (`AuditLog.append`)."""

    action: Required[str]
    """What: ``authenticate``, ``authorize``, ``screen``, ``validate``, ``audit.list``, ..."""
    decision: Required[str]
    """``ALLOW`` or ``DENY``."""
    subject: str
    """Who (default ``anonymous``)."""
    resource: str
    reason: str
    request_id: str
    details: dict[str, Any] | None


@dataclass(frozen=True)
class AuditFilter:
    """Filters for `AuditLog.list`; unset fields match everything."""

    subject: str | None = None
    action: str | None = None
    resource: str | None = None
    decision: str | None = None
    request_id: str | None = None
    since_ts: float | None = None
    until_ts: float | None = None


@dataclass
class VerifyResult:
    """Outcome of a chain check. ``first_bad_seq`` is where the chain first fails (None when ok)."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problems: list[str] = field(default_factory=list)

    def fail(self, seq: int, problem: str) -> None:
        if self.first_bad_seq is None:
            self.first_bad_seq = seq
        if len(self.problems) < 20:
            self.problems.append(problem)
        self.ok = False


class AuditLog:
    """Append-only, hash-chained audit records in one SQLite file."""

    def __init__(
        self,
        path: Path | str,
        *,
        redactor: Redactor | None = None,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        now: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self._redactor = redactor or Redactor()
        self._now = now
        # This lock guards the connection and _head; held only for short, non-awaiting sections.
        self._lock = threading.Lock()
        # NORMAL in WAL mode survives process crashes; FULL also survives power loss (slower).
        self._conn = open_sqlite(self.path, synchronous=synchronous, busy_timeout_ms=2000)
        try:
            migrate_sqlite(
                self._conn, MIGRATIONS, what=f"audit log {self.path}", upgrade="the security service"
            )
        except BaseException:
            self._conn.close()
            raise
        # Chain tip (seq, hash): new records link to it, and verify() uses it to notice a
        # truncated tail. Re-read from the file only when another writer got there first.
        self._head: tuple[int, str] = self._stored_head()
        self._committer: BatchWriter[_Prepared, AuditRecord] | None = None  # started on first use
        self.write_ok = True
        """False after a failed write until a write or `probe` succeeds (drives the health status)."""
        self._anchored = (-1, "")
        self.log_anchor()

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the newest record this process knows of."""
        return self._head

    def log_anchor(self) -> None:
        """Log the chain head when it moved since the last anchor.

        Logs leave the machine; a head seen there cannot be taken back by editing the database,
        so these lines let an operator notice a truncated or replaced log even across restarts.
        """
        head = self._head
        if head != self._anchored:
            self._anchored = head
            _log.info("audit chain head seq=%d hash=%s", head[0], head[1], extra={"audit_seq": head[0]})

    def close(self) -> None:
        """Flush queued group-commit records, then close the database."""
        if self._committer is not None:
            self._committer.close(timeout=10.0)
        self.log_anchor()
        with self._lock:
            self._conn.close()

    def probe(self) -> bool:
        """Check that a record could be written now, without writing one (insert, then roll back)."""
        dummy = (-1, "probe", 0.0, "", "", "", "", "", "", "{}", GENESIS, "")
        with self._lock:
            try:
                self._conn.execute("SAVEPOINT probe")
                try:
                    self._conn.execute(
                        f"INSERT INTO audit ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", dummy
                    )
                finally:
                    self._conn.execute("ROLLBACK TO probe")
                    self._conn.execute("RELEASE probe")
            except sqlite3.Error:
                self.write_ok = False
                return False
        self.write_ok = True
        return True

    def _stored_head(self) -> tuple[int, str]:
        try:
            row = self._conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        except sqlite3.Error as exc:
            raise Unavailable(f"audit log unreadable ({type(exc).__name__}); request refused") from None
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    def _prepare(self, entry: AuditEntry) -> _Prepared:
        """Sanitize and bound one record's fields; (id, ts, ...) without its chain position."""
        clean_reason, _ = self._redactor.redact(entry.get("reason", ""))
        clean_details, _ = self._redactor.redact_value(entry.get("details") or {})
        details_json = json.dumps(clean_details, sort_keys=True, default=str, ensure_ascii=False)
        clean_subject, _ = self._redactor.redact(entry.get("subject", "anonymous")[:200])
        return (uuid.uuid4().hex, self._now(), entry.get("request_id", "")[:200], clean_subject,
                entry["action"][:100], entry.get("resource", "")[:500], entry["decision"], clean_reason,
                details_json)  # fmt: skip

    def _write(self, batch: list[_Prepared]) -> list[AuditRecord]:
        """Chain and insert ``batch`` in one transaction: all records are stored, or none and it raises."""
        with self._lock:
            for attempt in range(2):
                head = self._head
                rows: list[tuple[Any, ...]] = []
                for prepared in batch:
                    fields = (head[0] + 1, *prepared, head[1])
                    h = _digest(fields)
                    rows.append((*fields, h))  # the record's fields in _COLUMNS order
                    head = (head[0] + 1, h)
                records = [AuditRecord(*row) for row in rows]
                try:
                    with self._conn:  # one transaction: committed on success, rolled back on error
                        self._conn.execute("BEGIN")
                        self._conn.executemany(
                            f"INSERT INTO audit ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows
                        )
                except sqlite3.IntegrityError:
                    if attempt:
                        raise Unavailable(
                            "audit log write failed (chain conflict); request refused"
                        ) from None
                    # Another writer extended the chain: continue from the stored tip.
                    self._head = self._stored_head()
                    continue
                except sqlite3.Error as exc:
                    self.write_ok = False
                    raise Unavailable(
                        f"audit log write failed ({type(exc).__name__}); request refused"
                    ) from None
                self._head = head
                self.write_ok = True
                for r in records:
                    AUDIT_EVENTS.labels(r.action, r.decision).inc()
                return records
        raise AssertionError("unreachable")

    def append(self, **entry: Unpack[AuditEntry]) -> AuditRecord:
        """Durably append one record and return it.

        Raises:
            Unavailable: the record could not be written; the caller must refuse the decision.
        """
        return self._write([self._prepare(entry)])[0]

    async def append_async(self, **entry: Unpack[AuditEntry]) -> AuditRecord:
        """Like `append`, with group commit: records submitted while a commit is in flight share
        the next transaction, so concurrent requests pay for one commit instead of one each.
        Returns only once the record is stored; raises `Unavailable` (refuse the decision) if not.
        """
        if self._committer is None:
            # One transaction per batch: every record of it is stored, or every caller gets the error.
            self._committer = BatchWriter(self._write, name="audit-writer", closed=_closed)
        # Inside a ScreenStream batch the record waits for the batch's (`_auditgroup`).
        return await submit_record(self._committer, self._prepare(entry))

    def list(
        self,
        flt: AuditFilter | None = None,
        *,
        page_size: int = 100,
        page_token: str = "",
        newest_first: bool = True,
    ) -> tuple[list[AuditRecord], str]:
        """Return one page of records matching ``flt`` and the token of the next page ("" at the end).

        Raises:
            InvalidArgument: bad ``page_token`` or ``page_size``.
        """
        flt = flt or AuditFilter()
        if not 0 <= page_size <= _MAX_PAGE:
            raise InvalidArgument(f"page_size must be between 1 and {_MAX_PAGE}")
        page_size = page_size or 100
        where, args = [], []  # type: list[str], list[Any]
        if page_token:
            # isdigit() alone admits "²" and other non-ASCII digits int() rejects.
            if not (page_token.isascii() and page_token.isdigit() and len(page_token) <= 18):
                raise InvalidArgument("page_token is not a token returned by a previous page")
            where.append("seq < ?" if newest_first else "seq > ?")
            args.append(int(page_token))
        for column, value in (("subject", flt.subject), ("action", flt.action), ("resource", flt.resource),
                              ("decision", flt.decision), ("request_id", flt.request_id)):  # fmt: skip
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if flt.since_ts is not None:
            where.append("ts >= ?")
            args.append(flt.since_ts)
        if flt.until_ts is not None:
            where.append("ts < ?")
            args.append(flt.until_ts)
        sql = f"SELECT {_COLUMNS} FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY seq {'DESC' if newest_first else 'ASC'} LIMIT ?"
        args.append(page_size + 1)
        with self._lock:
            try:
                rows = self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise Unavailable(f"audit log read failed ({type(exc).__name__})") from None
        records = [_record(r) for r in rows[:page_size]]
        more = len(rows) > page_size
        return records, (str(records[-1].seq) if more and records else "")

    def verify(self) -> VerifyResult:
        """Walk the whole chain and report the first place it breaks (and up to 20 problems).

        Reads through its own connection (WAL readers do not block the writer), so it may run
        in a worker thread while requests keep appending.
        """
        with self._lock:
            head_seq, head_hash = self._head  # taken first: rows read later can only be newer
        result = VerifyResult(ok=True, checked=0)
        if self.path == ":memory:":
            with self._lock:
                prev_seq, prev_hash = _walk(self._conn, result)
        else:
            reader = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            try:
                prev_seq, prev_hash = _walk(reader, result)
            finally:
                reader.close()
        if head_seq > prev_seq:
            result.fail(
                prev_seq + 1, f"records {prev_seq + 1}..{head_seq} were written but are gone (truncated)"
            )
        elif head_seq == prev_seq and head_seq and head_hash != prev_hash and result.ok:
            result.fail(head_seq, f"record {head_seq} differs from the one this process wrote")
        return result


def _closed() -> Exception:
    return Unavailable("audit log is closed; request refused")


def _walk(conn: sqlite3.Connection, result: VerifyResult) -> tuple[int, str]:
    """Check every record's hash and link in seq order; returns the last (seq, hash) seen."""
    prev_seq, prev_hash = 0, GENESIS
    try:
        for row in conn.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq"):
            result.checked += 1
            try:
                rec = _record(row)
                recomputed = rec.expected_hash()
            except (TypeError, ValueError):
                result.fail(prev_seq + 1, f"record after seq {prev_seq} has malformed fields")
                prev_seq += 1
                continue
            if rec.seq != prev_seq + 1:
                result.fail(rec.seq, f"records {prev_seq + 1}..{rec.seq - 1} are missing (removed)")
            if rec.prev_hash != prev_hash:
                result.fail(
                    rec.seq, f"record {rec.seq} does not link to record {prev_seq} (removed or reordered)"
                )
            if recomputed != rec.hash:
                result.fail(rec.seq, f"record {rec.seq} was modified (hash mismatch)")
            prev_seq, prev_hash = rec.seq, rec.hash
    except sqlite3.Error as exc:
        result.fail(prev_seq + 1, f"audit log unreadable after record {prev_seq}: {type(exc).__name__}")
    return prev_seq, prev_hash


def _record(row: tuple[Any, ...]) -> AuditRecord:
    seq, rid, ts, req, subj, action, resource, decision, reason, details, prev, h = row
    return AuditRecord(int(seq), str(rid), float(ts), str(req), str(subj), str(action), str(resource),
                       str(decision), str(reason), str(details), str(prev), str(h))  # fmt: skip
