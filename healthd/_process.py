"""Process handles: signalling a process group, and waiting for a process that may not be our
child (one adopted from a previous healthd: its parent is init now, so it cannot be awaited).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

from healthd._pidfile import ChildRecord, start_time


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to process group ``pgid``; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


async def group_gone(pgid: int, timeout_s: float = 1.0) -> None:
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


async def wait_foreign(pid: int, started: int | None = None) -> None:
    """Return when process ``pid`` (not our child) has exited.

    A pidfd is readable once the process exits (Linux 5.3+); elsewhere /proc is polled.
    ``started`` (its start time) guards against a pid reused before the pidfd was opened.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):
        # No pidfd (old kernel): nothing to wait on but /proc.
        while start_time(pid) is not None and start_time(pid) == (started or start_time(pid)):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return
    try:
        if started is not None and start_time(pid) != started:
            return  # exited (and the pid reused) before the pidfd was opened
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def exited() -> None:
            if not done.done():
                done.set_result(None)

        loop.add_reader(pidfd, exited)
        try:
            await done
        finally:
            loop.remove_reader(pidfd)
    finally:
        os.close(pidfd)


class Proc:
    """One process of a child: started by this healthd (``proc``) or adopted (pid only)."""

    def __init__(self, pid: int, proc: asyncio.subprocess.Process | None = None) -> None:
        self.pid = pid
        self.proc = proc
        self.started = start_time(pid)
        self.exited = asyncio.Event()
        self.code: int | None = None
        """Exit code once exited (negative: signal); stays None for an adopted process."""

    @property
    def adopted(self) -> bool:
        return self.proc is None

    @property
    def running(self) -> bool:
        return not self.exited.is_set()

    async def wait(self) -> int | None:
        """Wait for the exit (called once, by the reaper); others await ``exited``."""
        if self.proc is not None:
            self.code = await self.proc.wait()
        else:
            await wait_foreign(self.pid, self.started)
        self.exited.set()
        return self.code


async def terminate_foreign(record: ChildRecord, grace_s: float) -> None:
    """Stop a recorded child that is not ours to adopt (argv changed, no longer configured).

    Only called for a record whose pid still has the recorded start time (`RunDir.live`).
    """
    if start_time(record.pid) != record.start_time:
        return
    signal_group(record.pid, signal.SIGTERM)
    signal_group(record.pid, signal.SIGCONT)
    try:
        async with asyncio.timeout(grace_s):
            await wait_foreign(record.pid, record.start_time)
    except TimeoutError:
        signal_group(record.pid, signal.SIGKILL)
        await wait_foreign(record.pid, record.start_time)
    signal_group(record.pid, signal.SIGKILL)
    await group_gone(record.pid)
