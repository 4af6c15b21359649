"""The keyed, anchored audit log: append (group commit), list, verify.

Records are chained and MAC'd (`services.security._audit_chain`) with keys kept outside the
database (`AuditKeys`); the chain head is anchored outside it too: appended to a head file
after every commit (`HeadFile`), exported as the ``vigil_audit_head_seq`` gauge and logged
as ``audit chain head seq=N hash=H`` lines. Start-up and `verify` compare the database with
the anchor, so truncating the tail, emptying or re-creating the table and re-MACing the
chain are reported with the first bad position. Text is sanitized before it is MAC'd and
stored. A write that fails raises `Unavailable`: callers must refuse the decision rather
than let a request through unaudited.

Storage is an `AuditStore`: one SQLite file (local stack; several processes may share it)
or PostgreSQL (Kubernetes; replicas share one sequence).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Required, TypedDict, Unpack

from services.common import (
    BatchWriter,
    InvalidArgument,
    Unavailable,
    get_logger,
    tracer,
)
from services.security._audit_anchor import Anchor, HeadFile
from services.security._audit_chain import GENESIS, AuditRecord, ChainWalk, Prepared, VerifyResult, chain_rows
from services.security._audit_keys import AuditKeys
from services.security._audit_store import AuditStore, AuditStoreError, SqliteAuditStore
from services.security._auditgroup import submit_record
from services.security._sanitize import Redactor
from services.security._telemetry import AUDIT_CHAIN_OK, AUDIT_EVENTS, AUDIT_HEAD_SEQ

__all__ = ["GENESIS", "AuditEntry", "AuditFilter", "AuditLog", "AuditRecord", "VerifyResult"]

_log = get_logger("vigil.security.audit")
_MAX_PAGE = 1000


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


class AuditLog:
    """Append-only, MAC-chained audit records in an `AuditStore`, anchored in a head file.

    Args:
        store: The database, or the path of a SQLite file.
        keys: MAC keys (signing and verifying); never stored in the database.
        head_file: The anchor file; ``None`` leaves only the exported anchor (log, gauge).
        name: Label of the exported gauges (``security``, ``healthd``).
    """

    def __init__(
        self,
        store: AuditStore | Path | str,
        *,
        keys: AuditKeys,
        head_file: HeadFile | Path | str | None = None,
        redactor: Redactor | None = None,
        now: Callable[[], float] = time.time,
        name: str = "security",
    ) -> None:
        self._store = store if not isinstance(store, (Path, str)) else SqliteAuditStore(str(store))
        self.path = self._store.name
        self._keys = keys
        self._anchor = HeadFile(head_file) if isinstance(head_file, (Path, str)) else head_file
        self._redactor = redactor or Redactor()
        self._now, self.name = now, name
        # This lock guards the store's connection and _head; held only for short, non-awaiting sections.
        self._lock = threading.Lock()
        self._committer: BatchWriter[Prepared, AuditRecord] | None = None  # started on first use
        self.write_ok = True
        """False after a failed write until a write or `probe` succeeds (drives the health status)."""
        self._lost_anchor = ""
        """Set when the head file was missing at start-up although keyed records exist."""
        try:
            # Chain tip (seq, MAC) this process knows of: verify() uses it to notice a truncated tail.
            self._head: tuple[int, str] = self._call(self._store.head)
            self._adopt_anchor()
            startup = self._check_anchor(
                VerifyResult(ok=True, checked=0, head=self._head), self._read_anchor()
            )
        except BaseException:
            self._store.close()
            raise
        self._report(startup, "at start-up")
        self._anchored = (-1, "")
        self.log_anchor()

    @property
    def head(self) -> tuple[int, str]:
        """(seq, MAC) of the newest record this process knows of."""
        return self._head

    def _call(self, fn: Callable[[], Any], what: str = "unreadable") -> Any:
        try:
            return fn()
        except AuditStoreError as exc:
            raise Unavailable(f"audit log {what} ({exc.kind}); request refused") from None

    @contextlib.contextmanager
    def _serialized(self) -> Iterator[None]:
        """This process's lock, then the head file's (every writer of the chain, any process)."""
        with self._lock, self._anchor.locked() if self._anchor else contextlib.nullcontext():
            yield

    def _adopt_anchor(self) -> None:
        """Start a missing head file at the current head; its first line marks the legacy boundary."""
        if self._anchor is None:
            return
        with self._serialized():
            if self._anchor.first_and_last() is not None:
                return
            head = self._call(self._store.head)
            if head[0] and not self._store.adopting_keys:
                # Only a log that takes on keys just now may lack its anchor; otherwise the file
                # was removed (with it, what would expose a truncated or legacy-rewritten chain).
                self._lost_anchor = (
                    f"head file {self._anchor.path} was missing at start-up although the log has records "
                    f"(re-anchored at seq {head[0]}; records before may have been removed)"
                )
            legacy = self._call(self._store.legacy_until)
            self._anchor.append(self._keys, head[0], head[1], legacy_until=legacy)
            self._head = head

    def _read_anchor(self) -> tuple[Anchor, Anchor] | str | None:
        """The head file's first and last lines, a problem with it, or None when there is no anchor."""
        if self._anchor is None:
            return None
        try:
            lines = self._anchor.first_and_last()
        except (OSError, ValueError) as exc:
            return f"head file unreadable: {exc}"
        return lines if lines is not None else f"head file {self._anchor.path} is missing"

    def _check_anchor(self, result: VerifyResult, anchor: tuple[Anchor, Anchor] | str | None) -> VerifyResult:
        """Compare the anchor (read *before* the chain was) with the chain ``result`` walked."""
        walked_seq, _ = result.head
        if self._lost_anchor:
            result.fail(1, self._lost_anchor)
        if anchor is None:
            return result
        if isinstance(anchor, str):
            result.fail(1, anchor)
            return result
        first, last = anchor
        for line in (first, last):
            if not line.authentic(self._keys):
                result.fail(min(line.seq, walked_seq) + 1, f"head file line for seq {line.seq} is forged")
                return result
        with self._lock:
            stored_legacy = self._call(self._store.legacy_until)
            row = self._call(lambda: self._store.record_at(last.seq)) if last.seq else None
        if first.legacy_until is not None and first.legacy_until != stored_legacy:
            # The walk judged records by the anchored boundary and located the forgeries already.
            at = result.first_bad_seq or min(first.legacy_until, stored_legacy) + 1
            anchored = first.legacy_until
            result.fail(
                at,
                f"legacy boundary in the database ({stored_legacy}) is not the anchored one ({anchored})",
            )
        if last.rollback_at is not None:
            cut, high = last.rollback_at, last.high
            result.fail(cut, f"records {cut}..{high} were anchored, then the chain went on below them "
                             "(truncated, emptied or re-created earlier)")  # fmt: skip
        if last.seq > walked_seq:
            result.fail(walked_seq + 1, f"records {walked_seq + 1}..{last.seq} were anchored but are gone "
                                        "(truncated, emptied or re-created)")  # fmt: skip
        elif last.seq and (row is None or str(row[11]) != last.mac):
            result.fail(last.seq, f"record {last.seq} differs from the anchored head (rewritten)")
        return result

    def _report(self, result: VerifyResult, when: str) -> None:
        AUDIT_CHAIN_OK.labels(self.name).set(1 if result.ok else 0)
        if not result.ok:
            bad, problems = result.first_bad_seq, "; ".join(result.problems[:3])
            _log.error("audit chain check failed %s: first bad seq=%s: %s", when, bad, problems,
                       extra={"audit_first_bad_seq": bad})  # fmt: skip

    def log_anchor(self) -> None:
        """Log (and export as a gauge) the chain head when it moved since the last anchor.

        Logs leave the machine; a head seen there cannot be taken back by editing the database
        or the head file, so these lines let an operator notice a truncated or replaced log.
        """
        head = self._head
        AUDIT_HEAD_SEQ.labels(self.name).set(head[0])
        if head != self._anchored:
            self._anchored = head
            _log.info("audit chain head seq=%d hash=%s", head[0], head[1], extra={"audit_seq": head[0]})
            # And as an OTLP event (a no-op while tracing is off): the collector keeps it too.
            with tracer().start_as_current_span("audit.anchor") as span:
                span.add_event(
                    "audit.chain.head", {"audit.log": self.name, "audit.seq": head[0], "audit.mac": head[1]}
                )

    def close(self) -> None:
        """Flush queued group-commit records, then close the database."""
        if self._committer is not None:
            self._committer.close(timeout=10.0)
        self.log_anchor()
        with self._lock:
            self._store.close()

    def probe(self) -> bool:
        """Check that a record could be written now, without writing one."""
        with self._lock:
            self.write_ok = self._store.probe()
        return self.write_ok

    def _prepare(self, entry: AuditEntry) -> Prepared:
        """Sanitize and bound one record's fields; (id, ts, ...) without its chain position."""
        clean_reason, _ = self._redactor.redact(entry.get("reason", ""))
        clean_details, _ = self._redactor.redact_value(entry.get("details") or {})
        details_json = json.dumps(clean_details, sort_keys=True, default=str, ensure_ascii=False)
        # Resource and request id are caller-chosen text too (Authorize.resource, a path, the
        # workflow name of an unauthenticated Screen): the same policy as every other field.
        clean = self._clean_field
        return (uuid.uuid4().hex, self._now(), clean(entry.get("request_id", ""), 200),
                clean(entry.get("subject", "anonymous"), 200), entry["action"][:100],
                clean(entry.get("resource", ""), 500), entry["decision"], clean_reason,
                details_json)  # fmt: skip

    def _clean_field(self, text: str, limit: int) -> str:
        """``text`` cut to ``limit`` characters, then redacted (a secret cut in half is still found
        by its prefix for most kinds; cutting first keeps the work bounded)."""
        return self._redactor.redact(text[:limit])[0]

    def _write(self, batch: list[Prepared]) -> list[AuditRecord]:
        """Chain, MAC and insert ``batch`` in one transaction, then anchor it; raises if not stored."""
        with self._serialized():
            try:
                records = self._store.append(lambda head: chain_rows(head, batch, self._keys))
                tip = records[-1]
                if self._anchor is not None:
                    self._anchor.append(self._keys, tip.seq, tip.hash)
            except (AuditStoreError, OSError, ValueError) as exc:  # ValueError: a malformed head file
                self.write_ok = False
                kind = getattr(exc, "kind", None) or type(exc).__name__
                raise Unavailable(f"audit log write failed ({kind}); request refused") from None
            self._head = (tip.seq, tip.hash)
        self.write_ok = True
        AUDIT_HEAD_SEQ.labels(self.name).set(tip.seq)
        for r in records:
            AUDIT_EVENTS.labels(r.action, r.decision).inc()
        return records

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
            self._committer = BatchWriter(self._write, name=f"{self.name}-audit-writer", closed=_closed)
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
        # Filters on redacted columns are redacted alike, so a raw value finds its records.
        subject, resource, request_id = (
            None if v is None else self._clean_field(v, n)
            for v, n in ((flt.subject, 200), (flt.resource, 500), (flt.request_id, 200))
        )
        for column, value in (("subject", subject), ("action", flt.action), ("resource", resource),
                              ("decision", flt.decision), ("request_id", request_id)):  # fmt: skip
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if flt.since_ts is not None:
            where.append("ts >= ?")
            args.append(flt.since_ts)
        if flt.until_ts is not None:
            where.append("ts < ?")
            args.append(flt.until_ts)
        with self._lock:
            rows = self._call(
                lambda: self._store.select(where, args, newest_first, page_size + 1), "read failed"
            )
        records = [AuditRecord.from_row(tuple(r)) for r in rows[:page_size]]
        more = len(rows) > page_size
        return records, (str(records[-1].seq) if more and records else "")

    def verify(self) -> VerifyResult:
        """Walk the whole chain and the anchor; report the first place it breaks (and up to 20 problems).

        Reads through its own connection where the store can (WAL readers do not block the
        writer), so it may run in a worker thread while requests keep appending.
        """
        with self._lock:
            head_seq, head_hash = self._head  # taken first: rows read later can only be newer
        anchor = self._read_anchor()  # likewise
        walk = ChainWalk(self._keys, self._legacy_until(anchor))
        try:
            for row in self._store.rows():
                walk.row(tuple(row))
        except AuditStoreError as exc:
            walk.unreadable(exc)
        result = walk.result
        walked_seq, walked_hash = result.head
        if head_seq > walked_seq:
            result.fail(
                walked_seq + 1, f"records {walked_seq + 1}..{head_seq} were written but are gone (truncated)"
            )
        elif head_seq == walked_seq and head_seq and head_hash != walked_hash and result.ok:
            result.fail(head_seq, f"record {head_seq} differs from the one this process wrote")
        self._check_anchor(result, anchor)
        self._report(result, "by verify")
        return result

    def _legacy_until(self, anchor: tuple[Anchor, Anchor] | str | None) -> int:
        """The legacy boundary: the anchored one when the head file has it, else the database's."""
        if (
            isinstance(anchor, tuple)
            and anchor[0].legacy_until is not None
            and anchor[0].authentic(self._keys)
        ):
            return anchor[0].legacy_until
        with self._lock:
            return int(self._call(self._store.legacy_until))


def _closed() -> Exception:
    return Unavailable("audit log is closed; request refused")
