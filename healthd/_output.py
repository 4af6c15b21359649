"""A supervised child's output: a log file the child writes itself, followed by healthd.

The child's stdout and stderr are the same append-only file (``O_APPEND``), not pipes to
healthd: a pipe dies with healthd and a child writing to it then loses its logs (or its life,
to SIGPIPE), while a file outlives healthd and the next one follows it from where it is.
healthd polls the file (cheap: a few children, a ``stat`` and a ``read`` each tick), forwards
each new line to its sink (stderr, prefixed), keeps the last lines for status and TailLog, and
rotates the file itself by copy-and-truncate (the child keeps its descriptor; with O_APPEND its
next write lands at the new end). A line written between the final read and the truncate of
a rotation can be missing from the forwarded stream (it is still in the ``.1`` file).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

LineSink = Callable[[str], None]
Tagged = tuple[float, int, str]
"""(time read, tag such as the replica index, line) as put on a subscriber's queue."""
POLL_S = 0.05
"""How often the file is read for new output."""
TAIL_LINES = 20
"""Lines shown as ``last_output`` (status, dashboard, GetSystemHealth)."""
KEPT_LINES = 10_000
"""Lines kept in memory for TailLog (at most; `KEPT_BYTES` bounds them too)."""
KEPT_BYTES = 4 << 20
"""Bytes of kept lines: with `LINE_LIMIT` this bounds a child's memory in healthd, however
long the lines it writes (the oldest kept lines go first)."""
LINE_LIMIT = 8 << 10
"""Longest line (bytes) forwarded and kept; the rest of a longer one is dropped and the line
marked with `TRUNCATED` (the whole line is still in the log file)."""
TRUNCATED = " [... line truncated: {} bytes dropped]"
READ_CHUNK = 1 << 20
"""Most bytes read from the file at once (a child may write faster than healthd polls)."""
LOG_MODE = 0o600
"""Every log file (the live one and its rotated ``.1``): output may hold secrets a child logs."""
_SEED_BYTES = 64 << 10
"""How much of an existing file is read to seed the kept lines when following it anew."""


class OutputLog:
    """The output file of one child (one replica), its follower and its recent lines.

    Invariant: ``_offset`` is the position up to which the file has been read and split
    into lines; ``_partial`` holds the bytes after the last newline read so far, at most
    `LINE_LIMIT` of them (``_dropped`` counts the bytes of that line dropped beyond it);
    ``_kept_bytes`` is the size of the lines in ``lines``, at most `KEPT_BYTES`.
    """

    def __init__(self, path: Path, prefix: str, sink: LineSink, max_bytes: int = 4 << 20) -> None:
        self.path = path
        self._prefix = prefix
        self._sink = sink
        self._max_bytes = max_bytes
        self._offset = 0
        self._partial = b""
        self._dropped = 0
        self.lines: deque[tuple[float, str]] = deque()
        self._kept_bytes = 0
        self._subscribers: dict[asyncio.Queue[Tagged | None], int] = {}
        self._task: asyncio.Task[None] | None = None

    def open_for_child(self) -> int:
        """A fresh append-only descriptor for a new child's stdout/stderr (caller closes it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, LOG_MODE)
        os.fchmod(fd, LOG_MODE)  # a file left by an older release may be wider
        return fd

    def follow(self, *, from_end: bool) -> None:
        """Start following; ``from_end`` (adoption) seeds the kept lines from the file's tail
        without forwarding them again, and forwards only what is written from now on."""
        if from_end:
            self._seed()
        else:
            with contextlib.suppress(OSError):
                self._offset = self.path.stat().st_size
        if self._task is None:
            self._task = asyncio.ensure_future(self._poll())

    async def stop(self) -> None:
        """Read what is left, then stop following (subscribers get their end marker)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.drain()
        for queue in self._subscribers:
            if queue.full():  # the end marker must get through: drop the oldest line instead
                queue.get_nowait()
            queue.put_nowait(None)

    def tail(self, n: int = TAIL_LINES) -> list[str]:
        """The last ``n`` lines, oldest first."""
        return [line for _, line in list(self.lines)[-n:]] if n > 0 else []

    @contextlib.contextmanager
    def subscribe(self, queue: asyncio.Queue[Tagged | None], tag: int) -> Iterator[None]:
        """Put new lines as (time, tag, line) on ``queue`` while the context is open; ``None``
        when following ends (healthd stops). A full queue loses lines, never blocks healthd."""
        self._subscribers[queue] = tag
        try:
            yield
        finally:
            self._subscribers.pop(queue, None)

    # ---- reading ------------------------------------------------------------------------

    def _seed(self) -> None:
        try:
            size = self.path.stat().st_size
            with self.path.open("rb") as f:
                f.seek(max(0, size - _SEED_BYTES))
                data = f.read(size)
        except OSError:
            return
        self._offset = size
        now = time.time()
        for raw in data.splitlines()[-TAIL_LINES:]:
            self._keep(now, _line(raw[:LINE_LIMIT], max(0, len(raw) - LINE_LIMIT)))

    async def _poll(self) -> None:
        while True:
            self.drain()
            await asyncio.sleep(POLL_S)

    def drain(self) -> None:
        """Read and dispatch everything written since the last read; rotate if too big."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return
        if size < self._offset:  # truncated by someone else: start over
            self._offset, self._partial, self._dropped = 0, b"", 0
        if size > self._offset:
            try:
                with self.path.open("rb") as f:
                    f.seek(self._offset)
                    while self._offset < size and (data := f.read(min(READ_CHUNK, size - self._offset))):
                        self._offset += len(data)
                        self._split(data)
            except OSError:
                return
        if self._offset >= self._max_bytes:
            self._rotate()

    def _split(self, data: bytes) -> None:
        now = time.time()
        *complete, rest = data.split(b"\n")
        for piece in complete:
            self._add(piece)
            self._emit(now, _line(self._partial, self._dropped))
            self._partial, self._dropped = b"", 0
        self._add(rest)

    def _add(self, piece: bytes) -> None:
        """Append to the current line up to `LINE_LIMIT`; count what is dropped beyond it."""
        room = LINE_LIMIT - len(self._partial)
        self._partial += piece[:room]
        self._dropped += max(0, len(piece) - room)

    def _keep(self, now: float, line: str) -> None:
        self.lines.append((now, line))
        self._kept_bytes += len(line)
        while len(self.lines) > KEPT_LINES or self._kept_bytes > KEPT_BYTES:
            self._kept_bytes -= len(self.lines.popleft()[1])

    def _emit(self, now: float, line: str) -> None:
        self._keep(now, line)
        # healthd's stderr may be gone (closed terminal, dead pipe): the line is still kept,
        # published and in the file; a raise here would end the follower (and rotation) for good.
        with contextlib.suppress(OSError, ValueError):
            self._sink(f"[{self._prefix}] {line}")
        for queue, tag in self._subscribers.items():
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait((now, tag, line))

    def _rotate(self) -> None:
        try:
            # Not shutil.copyfile: it creates the copy with the umask's mode (0644).
            fd = os.open(
                self.path.with_name(self.path.name + ".1"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, LOG_MODE
            )
            with os.fdopen(fd, "wb") as dst, self.path.open("rb") as src:
                os.fchmod(dst.fileno(), LOG_MODE)
                shutil.copyfileobj(src, dst)
            os.truncate(self.path, 0)
        except OSError:
            return
        self._offset = 0


def _line(raw: bytes, dropped: int) -> str:
    """A line as forwarded and kept: decoded, trailing space gone, marked when truncated."""
    text = raw.decode(errors="replace").rstrip()
    return text + TRUNCATED.format(dropped) if dropped else text
