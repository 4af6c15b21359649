"""The start gate: a supervised child is recorded before it runs its program.

Invariant (with a ``run_dir``): a child process runs its configured program only after its
pid record (`healthd._pidfile`) is on disk. healthd spawns it as ``/bin/sh -c GATE_SCRIPT``,
whose stdin is the read end of a pipe only healthd holds the write end of; the shell blocks
reading it. healthd writes the record (pid and start time are known once it is spawned, and an
``exec`` keeps both), then writes ``go``: the shell ``exec``s the program, so its pid, start
time and cmdline are exactly what the record says. If healthd dies (or the write fails) before
``go``, the pipe closes and the shell exits (code `GATE_EXIT`) without running anything, so no
unrecorded child is left for a restarted healthd to duplicate. A record written but never
followed by ``go`` names a process that exits at once; the next healthd drops it (dead pid).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

GATE_SCRIPT = 'IFS= read -r go || exit 111; exec "$@" </dev/null'
GATE_EXIT = 111
"""The shell's exit code when the pipe closed before ``go``."""


class StartGate:
    """The pipe one child waits on; the read end becomes its stdin."""

    def __init__(self) -> None:
        self.read_fd, self._write_fd = os.pipe()  # both close-on-exec; the child gets a dup as stdin
        self._open = True

    @staticmethod
    def argv(argv: list[str]) -> list[str]:
        """``argv`` behind the gate (``$0`` is a name for ps; ``"$@"`` is the program)."""
        return ["/bin/sh", "-c", GATE_SCRIPT, "vigil-gate", *argv]

    def open(self) -> None:
        """The record is written: let the child run its program."""
        os.write(self._write_fd, b"go\n")
        self.close()

    def close(self) -> None:
        """Close healthd's ends (idempotent); a child still waiting then exits."""
        if self._open:
            self._open = False
            os.close(self.read_fd)
            os.close(self._write_fd)


def ensure_executable(program: str, path: str | None, cwd: Path | None) -> None:
    """Raise the `OSError` an exec of ``program`` would (behind the gate the shell would only
    exit 127), so a bad argv still fails the start itself.

    Raises:
        FileNotFoundError: no such program (on ``path`` when it has no ``/``).
        PermissionError: not executable.
    """
    if "/" in program:
        target: str | None = str(Path(cwd or ".") / program)
        assert target is not None
        if not os.path.exists(target):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
        if not os.access(target, os.X_OK) or os.path.isdir(target):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)
        return
    if shutil.which(program, path=path) is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


def close_quietly(gate: StartGate | None) -> None:
    """`StartGate.close` for an optional gate, on paths that are already failing."""
    if gate is not None:
        with contextlib.suppress(OSError):
            gate.close()
