"""Records of running children under ``run_dir``, so a restarted healthd adopts them.

One JSON file per child (``<short-name>[-<replica>].json``, mode 0600, directory 0700):
pid, the process's start time (``/proc/<pid>/stat`` field 22, clock ticks since boot), argv,
the ports it owns, the healthd that started it and a digest of its configured env. A record
names *our* process only while the pid is alive with the same start time: a reused pid has a
later start time, so it is never adopted nor signalled; a record whose pid runs another
command line (a tampered or hand-edited file) is not ours either, unless that process's
environment carries the record's random token (a script, whose command line is its
interpreter's, or a wrapper that ``exec``s another program). Written atomically (temp file +
rename); removed when healthd stops the child on purpose, kept when healthd dies (the point).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from healthd._gate import StartGate
from services.common import get_logger

_log = get_logger("vigil.healthd.supervisor")


@dataclass(frozen=True)
class ChildRecord:
    """What healthd knows about a child it started."""

    component: str
    replica: int
    pid: int
    start_time: int
    argv: list[str]
    ports: dict[str, int] = field(default_factory=dict)
    healthd_pid: int = 0
    fingerprint: str = ""
    """Digest of the configured env it was started with (a changed config is not adopted)."""
    token: str = ""
    """Random per start, in the child's environment as `CHILD_TOKEN_ENV`: identifies it when its
    command line is not its argv (a script run by its interpreter, a wrapper that ``exec``s)."""


CHILD_TOKEN_ENV = "VIGIL_HEALTHD_CHILD_TOKEN"
"""Environment variable carrying a child's `ChildRecord.token` (inherited across ``exec``)."""


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces or ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    if fields and fields[0] == b"Z":
        return None  # a zombie is dead; only its exit status is left for its parent
    return int(fields[19])  # field 22 overall: starttime


def has_token(pid: int, token: str) -> bool:
    """The process's environment (as of its last exec) carries ``token`` (`CHILD_TOKEN_ENV`)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return bool(token) and f"{CHILD_TOKEN_ENV}={token}".encode() in raw.split(b"\0")


def cmdline(pid: int) -> list[str] | None:
    """argv of a live process, or None."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


EXEC_SETTLE_S = 1.0
"""Longest wait for a process in the middle of an exec to show its new command line."""


def settled_cmdline(pid: int) -> list[str] | None:
    """`cmdline`, waiting out an exec in progress: between the kernel switching a process to its
    new program and laying out its arguments, ``/proc/<pid>/cmdline`` reads empty (a child
    just let through the start gate, on a loaded machine, for milliseconds). Only a kernel
    thread stays empty: never a child of ours, so waiting for it is bounded, not wrong."""
    deadline = time.monotonic() + EXEC_SETTLE_S
    argv = cmdline(pid)
    while argv == [] and time.monotonic() < deadline:
        time.sleep(0.005)
        argv = cmdline(pid)
    return argv


class RunDir:
    """The directory of child records (created 0700 on first write)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _file(self, key: str) -> Path:
        return self.path / f"{key}.json"

    def write(self, key: str, record: ChildRecord) -> None:
        """Record a freshly started (or adopted) child atomically."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path, 0o700)
        tmp = self.path / f".{key}.json.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(record), f)
        os.replace(tmp, self._file(key))

    def remove(self, key: str) -> None:
        """Forget a child healthd stopped on purpose."""
        with contextlib.suppress(FileNotFoundError):
            self._file(key).unlink()

    def read(self, key: str) -> ChildRecord | None:
        """The record, or None when missing or unreadable (logged: a record is never trusted blindly)."""
        try:
            data = json.loads(self._file(key).read_text())
            return ChildRecord(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            _log.warning("ignoring unreadable child record %s: %s", self._file(key), exc)
            return None

    def live(self, key: str) -> ChildRecord | None:
        """The record if its process is still the one recorded (alive, same start time, same
        argv, or that argv still behind the start gate)."""
        record = self.read(key)
        if record is None:
            return None
        # Behind the start gate (`healthd._gate`) the recorded process is still the shell for a
        # moment; it is ours all the same (it runs the program next, or exits). A script's
        # command line is its interpreter's (or, after a wrapper's exec, another program's):
        # then the token in its environment says it is the child we started.
        if start_time(record.pid) != record.start_time or (
            settled_cmdline(record.pid) not in (record.argv, StartGate.argv(record.argv))
            and not has_token(record.pid, record.token)
        ):
            self.remove(key)  # dead, or the pid now belongs to another process
            return None
        return record

    def records(self) -> dict[str, ChildRecord]:
        """Key -> record, for every record whose process is still the one recorded."""
        if not self.path.is_dir():
            return {}
        out = {}
        for path in sorted(self.path.glob("*.json")):
            record = self.live(path.stem)
            if record is not None:
                out[path.stem] = record
        return out
