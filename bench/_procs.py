"""Server processes for benchmarks: start, wait until listening, control, measure, stop.

Benchmarked servers always run in their own process, so the load generator (this
process) and the server compete for the machine's cores like real peers rather than
sharing one event loop. Every process started here is killed when its context exits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

__all__ = ["ServerProcess", "cpu_s", "python_env", "rss_mb", "running", "wait_until"]

REPO = Path(__file__).resolve().parent.parent


def python_env(**extra: str) -> dict[str, str]:
    """Environment for child processes: unbuffered, no inherited VIGIL_*/OTEL_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "OTEL_"))}
    env.update({"PYTHONUNBUFFERED": "1", **extra})
    return env


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) ``pid`` has used so far (from /proc; Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        # Fields after the parenthesized command name; utime and stime are fields 14 and 15.
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (from /proc; Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise ProcessLookupError(pid)


class ServerProcess:
    """A child Python process that announces its port in a JSON "listening on" log line
    on stderr (as every Vigil server does) and may take line commands on stdin.

    stderr is drained by a thread into a bounded buffer, so a chatty server never blocks
    on a full pipe; the last lines are kept for error messages.
    """

    def __init__(
        self, args: Sequence[str], env: dict[str, str] | None = None, name: str = "", cwd: Path = REPO
    ) -> None:
        self.name = name or " ".join(args)
        self.cwd = cwd
        """Where the process runs: its ``-m`` modules are imported from this source tree."""
        self.args = [sys.executable, *args]
        self.env = env or python_env()
        self.popen: subprocess.Popen[str] | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=50)
        self._port: int | None = None
        self._port_seen = threading.Event()

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    @property
    def port(self) -> int:
        assert self._port is not None, f"{self.name} has not announced a port"
        return self._port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> int:
        """Start the process and block until it listens; returns its port."""
        self._port, self._port_seen = None, threading.Event()
        self.popen = subprocess.Popen(
            self.args,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._drain, args=(self.popen,), daemon=True).start()
        if not self._port_seen.wait(timeout) or self._port is None:
            self.kill()
            raise RuntimeError(f"{self.name} did not start: {''.join(self.tail)}")
        return self._port

    def _drain(self, popen: subprocess.Popen[str]) -> None:
        assert popen.stderr is not None
        for line in popen.stderr:
            self.tail.append(line)
            if self._port is None and "listening on" in line:
                with contextlib.suppress(json.JSONDecodeError):
                    entry = json.loads(line)
                    if "port" in entry:
                        self._port = int(entry["port"])
                        self._port_seen.set()
        self._port_seen.set()  # exited: unblock start()

    def send(self, line: str) -> None:
        """Send one command line on stdin; read its one-line answer with `answer`."""
        assert self.popen is not None and self.popen.stdin is not None
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    async def answer(self, wait_s: float = 10.0) -> str:
        """The next line the process wrote on stdout (the answer to a command)."""
        assert self.popen is not None and self.popen.stdout is not None
        stdout = self.popen.stdout
        return (await asyncio.wait_for(asyncio.to_thread(stdout.readline), wait_s)).strip()

    async def command(self, line: str, wait_s: float = 10.0) -> str:
        """Send one command line and return the process's one-line answer."""
        self.send(line)
        return await self.answer(wait_s)

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def signal(self, sig: int) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
        if self.popen is not None:
            self.popen.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL."""
        if self.popen is None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


@contextlib.contextmanager
def running(*procs: ServerProcess, timeout: float = 30.0) -> Iterator[tuple[ServerProcess, ...]]:
    """Start every process (in order), yield them, and always stop them all."""
    try:
        for proc in procs:
            proc.start(timeout)
        yield procs
    finally:
        for proc in reversed(procs):
            proc.stop()


def wait_until(predicate: Callable[[], object], timeout: float) -> bool:
    """Poll a zero-argument callable until it is truthy (bench set-up only, never timed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
