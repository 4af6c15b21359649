"""Supervisor mode: child processes started, watched, restarted and stopped by healthd.

Each child runs in its own session (process group), so stopping it signals the whole group
and grandchildren die with it: no orphans. Exit is noticed at once by awaiting the process
(death is an event), and reported through ``on_exit``. Output lines are forwarded prefixed
with the component name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable

from healthd._config import ProcessConfig
from services.common import SUPERVISOR_PID_ENV

LineSink = Callable[[str], None]
LINE_LIMIT = 1 << 20
"""Longest output line forwarded whole; longer ones are forwarded in pieces."""
PYTHON_PLACEHOLDER = "{python}"
"""An argv item replaced by healthd's own interpreter, so children run in the same venv."""
ExitCallback = Callable[[str, int], Awaitable[None] | None]


def stderr_sink(line: str) -> None:
    """Default sink: the line to healthd's stderr, flushed (children's logs interleave by line)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to process group ``pgid``; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


async def _group_gone(pgid: int, timeout_s: float = 1.0) -> None:
    """Wait (bounded) until no process of group ``pgid`` is left; SIGKILL is asynchronous.

    Bounded because zombies adopted by an init that does not reap still count as members.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.01)


class Child:
    """One supervised process.

    Invariant: ``_proc`` is the current process (or None before the first start); ``_stopping``
    is True while healthd itself is terminating it, so its exit is not reported as a death.
    """

    def __init__(
        self,
        name: str,
        cfg: ProcessConfig,
        *,
        sink: LineSink = stderr_sink,
        on_exit: ExitCallback | None = None,
    ) -> None:
        self.name = name
        self._cfg = cfg
        self._sink = sink
        self._on_exit = on_exit
        self._proc: asyncio.subprocess.Process | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._lock = asyncio.Lock()  # serialises start/stop/restart of this child
        self.started_at: float | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """Pid of the current process, if one was started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """Exit code of the last process (negative: killed by that signal); None while running."""
        return self._proc.returncode if self._proc is not None else None

    def liveness(self) -> tuple[bool, str]:
        """(alive, description) for the process check."""
        if self._proc is None:
            return False, "not started"
        if self._proc.returncode is None:
            return True, f"running (pid {self._proc.pid})"
        return False, describe_exit(self._proc.returncode)

    async def start(self) -> None:
        """Start the process (no-op if running)."""
        async with self._lock:
            await self._start_locked()

    async def _start_locked(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            return
        # Children built on run_main shut down by themselves if healthd dies (see SUPERVISOR_PID_ENV).
        env = {**os.environ, **self._cfg.env, SUPERVISOR_PID_ENV: str(os.getpid())}
        argv = [sys.executable if arg == PYTHON_PLACEHOLDER else arg for arg in self._cfg.argv]
        self._proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self._cfg.cwd,
            env=env,
            start_new_session=True,  # own process group: signals reach grandchildren too
            limit=LINE_LIMIT,
        )
        self.started_at = time.monotonic()
        self._stopping = False
        proc = self._proc
        assert proc.stdout is not None and proc.stderr is not None
        for stream in (proc.stdout, proc.stderr):
            self._spawn(self._pump(stream))
        self._spawn(self._reap(proc))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pump(self, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line over LINE_LIMIT: asyncio dropped it; say so, keep going
                line = b"<output line longer than %d bytes dropped>" % LINE_LIMIT
            if not line:
                return
            self._sink(f"[{self.name}] {line.decode(errors='replace').rstrip()}")

    async def _reap(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self._stopping or self._on_exit is None or proc is not self._proc:
            return  # an exit healthd caused is not a death
        result = self._on_exit(self.name, code)
        if result is not None:
            await result

    async def stop(self, grace_s: float | None = None) -> None:
        """SIGTERM the group, wait ``grace_s`` (config default), then SIGKILL; waits for exit."""
        async with self._lock:
            await self._stop_locked(self._cfg.grace_s if grace_s is None else grace_s)

    async def _stop_locked(self, grace_s: float) -> None:
        proc = self._proc
        if proc is None:
            return
        self._stopping = True
        if proc.returncode is None:
            signal_group(proc.pid, signal.SIGTERM)
            # A SIGSTOPped process cannot act on SIGTERM until continued.
            signal_group(proc.pid, signal.SIGCONT)
            try:
                async with asyncio.timeout(grace_s):  # not wait_for: see _checks.run_check
                    await proc.wait()
            except TimeoutError:
                signal_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        # The leader is gone; make sure nothing else in its group outlives it.
        signal_group(proc.pid, signal.SIGKILL)
        await _group_gone(proc.pid)
        # Wait for the pumps and the reaper, except the caller itself (on_exit may stop us).
        others = [t for t in self._tasks if t is not asyncio.current_task()]
        await asyncio.gather(*others, return_exceptions=True)

    async def restart(self) -> None:
        """Stop (graceful, then forced) and start again."""
        async with self._lock:
            await self._stop_locked(self._cfg.grace_s)
            await self._start_locked()
            self.restarts += 1


def describe_exit(code: int) -> str:
    """``exited with code 3`` or ``killed by SIGKILL``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    """All children of a healthd in supervisor mode; started in order, stopped in reverse."""

    def __init__(self) -> None:
        self.children: dict[str, Child] = {}

    def add(self, child: Child) -> None:
        """Register a child (start order is registration order)."""
        self.children[child.name] = child

    async def start_all(self) -> None:
        """Start every child in registration (dependency) order."""
        for child in self.children.values():
            await child.start()

    async def stop_all(self) -> None:
        """Stop children, dependents first; each gets its own grace period."""
        for child in reversed(list(self.children.values())):
            await child.stop()

    def pids(self) -> list[int]:
        """Pids of children that are currently running."""
        return [c.pid for c in self.children.values() if c.pid is not None and c.returncode is None]
