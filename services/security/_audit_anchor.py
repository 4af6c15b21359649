"""The audit chain's anchor outside the database: an append-only head file.

After every committed batch the writer appends one line ``{"seq", "mac", "sig"}`` (the
new head, its MAC, and a MAC of the line itself under the signing key), fsync'd when the
database's commits are (see `HeadFile`).
The file only ever grows, so the last line is a lower bound of the chain: the database
must hold a record at that ``seq`` with that MAC, and nothing before it may be missing.
Each line also carries the highest ``seq`` anchored so far, and once a writer anchors a
``seq`` at or below it (the tail was removed and the chain went on from the cut) every
later line says where (``rollback_at``): new records cannot hide a truncation.
That catches truncating the tail, deleting every row and dropping or re-creating the
table, which no check inside the database can. The first line also marks the legacy
boundary (``legacy_until``: records up to it predate keys).

Serialization: `locked` takes an exclusive ``flock`` on the file; writers hold it around
their database transaction *and* the line append, so lines appear in chain order even
with several processes on one database (the lock is per open file, so two logs in one
process exclude each other too). A crash between commit and append leaves the file one
batch behind: still a valid lower bound.

An attacker who can rewrite the database but not this file is caught here; one who can
rewrite both is caught by the exported anchor (log line and gauge, see `AuditLog`), which
has already left the machine. Put the file on another volume or make it append-only
(``chattr +a``) where that matters.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.common import create_private_dirs
from services.security._audit_keys import AuditKeys

__all__ = ["Anchor", "HeadFile"]

_LINE_DOMAIN = b"vigil-audit-head-v1\n"
_TAIL_BYTES = 8192


@dataclass(frozen=True)
class Anchor:
    """One head-file line: the chain had record ``seq`` with MAC ``mac`` (0 and GENESIS: empty)."""

    seq: int
    mac: str
    key_id: str
    sig: str
    legacy_until: int | None = None
    """Only on the first line: the last record that predates keys."""
    high: int = 0
    """The highest ``seq`` any line so far anchored (carried forward)."""
    rollback_at: int | None = None
    """Set (and carried forward) once a line anchored a ``seq`` at or below ``high``: the chain
    restarted below records it had, i.e. its tail was removed; the first ``seq`` re-used."""

    def signed_text(self) -> bytes:
        fields = (self.seq, self.mac, self.key_id, self.legacy_until, self.high, self.rollback_at)
        return _LINE_DOMAIN + "\n".join("" if f is None else str(f) for f in fields).encode()

    def authentic(self, keys: AuditKeys) -> bool:
        return keys.matches(self.key_id, self.signed_text(), self.sig)


class HeadFile:
    """The append-only head file at ``path`` (created 0600, its directories 0700).

    Args:
        fsync: fsync every line. Match the database's durability: a head that survives a
            power loss the database's last commits did not would claim records that are gone
            (a false truncation alarm), so with SQLite ``synchronous=NORMAL`` (commits survive
            a process crash, not a power loss) lines are written but not fsync'd.
    """

    def __init__(self, path: Path | str, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._fd: int | None = None  # the locked descriptor, while `locked` holds the lock
        # (inode, size, last line) after this object's last append: when the file is still
        # that size, nobody appended since and the last line need not be read back.
        self._tail: tuple[int, int, Anchor] | None = None

    def exists(self) -> bool:
        return self.path.exists()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive lock shared with every writer of this chain (any process)."""
        try:
            fd = _open_append(self.path)
        except FileNotFoundError:  # its directory is gone (or was never made): make it, once
            create_private_dirs(self.path.parent)
            fd = _open_append(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._fd = fd
            yield
        finally:
            self._fd = None
            os.close(fd)  # releases the lock

    def append(self, keys: AuditKeys, seq: int, mac: str, *, legacy_until: int | None = None) -> Anchor:
        """Append the line for head (``seq``, ``mac``), fsync'd if so configured (call under `locked`).

        Raises:
            ValueError: the last line is malformed (the file was edited): nothing is appended,
                so audit writes fail (closed) until an operator looks.
        """
        fd = (
            self._fd
            if self._fd is not None
            else os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        )
        try:
            return self._append(fd, keys, seq, mac, legacy_until)
        finally:
            if fd != self._fd:
                os.close(fd)

    def _append(self, fd: int, keys: AuditKeys, seq: int, mac: str, legacy_until: int | None) -> Anchor:
        st = os.fstat(fd)
        if self._tail is not None and self._tail[:2] == (st.st_ino, st.st_size):
            last: Anchor | None = self._tail[2]
        else:
            lines = self.first_and_last()
            last = None if lines is None else lines[1]
        high, rollback = 0, None
        if last is not None:
            high, rollback = max(last.high, last.seq), last.rollback_at
            if seq <= high and rollback is None:
                rollback = seq
        key_id = keys.signing_id
        unsigned = Anchor(seq, mac, key_id, "", legacy_until, high, rollback)
        anchor = dataclasses.replace(unsigned, sig=keys.mac(key_id, unsigned.signed_text()))
        line = {k: v for k, v in vars(anchor).items() if v is not None}  # all scalars: no asdict copy
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        written = os.write(fd, data)
        if self.fsync:
            os.fsync(fd)
        self._tail = (st.st_ino, st.st_size + written, anchor) if written == len(data) else None
        return anchor

    def first_and_last(self) -> tuple[Anchor, Anchor] | None:
        """The first and last lines (None when the file is missing or empty).

        Raises:
            ValueError: a line is not a head line (the file was edited).
        """
        try:
            with self.path.open("rb") as f:
                first = f.readline()
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - _TAIL_BYTES))
                tail = f.read().splitlines()
        except FileNotFoundError:
            return None
        if not first.strip():
            return None
        return _parse(first), _parse(tail[-1] if tail else first)


def _open_append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


def _optional_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _parse(line: bytes) -> Anchor:
    try:
        data = json.loads(line)
        return Anchor(int(data["seq"]), str(data["mac"]), str(data["key_id"]), str(data["sig"]),
                      _optional_int(data.get("legacy_until")), int(data.get("high", 0)),
                      _optional_int(data.get("rollback_at")))  # fmt: skip
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError(f"head file line is malformed: {line[:80]!r}") from None
