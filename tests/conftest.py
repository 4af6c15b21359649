"""Shared test helpers: polling instead of sleeping, and real-process plumbing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


async def eventually(fn: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``fn`` (sync or async) until it returns a truthy value or raises nothing falsy.

    Returns the first truthy result; on timeout re-raises the last assertion/exception or
    fails with the last value seen.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = fn()
            if isinstance(result, Awaitable):
                result = await result
            if result:
                return result
            last = result
        except (AssertionError, Exception) as exc:  # polled code may fail until ready
            last = exc
        if time.monotonic() > deadline:
            if isinstance(last, BaseException):
                raise last
            raise AssertionError(f"condition not met within {timeout}s (last value {last!r})")
        await asyncio.sleep(interval)


def python_env(**extra: str) -> dict[str, str]:
    """Environment for child Python processes: unbuffered, no inherited VIGIL_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "OTEL_"))}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def stop_group(popen: subprocess.Popen[Any], grace_s: float = 30.0) -> None:
    """SIGTERM the process group a test started (``start_new_session=True``: the process and
    whatever it supervises), wait ``grace_s``, then SIGKILL the group if it is still there."""
    os.killpg(popen.pid, signal.SIGTERM)
    try:
        popen.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(10)


class Proc:
    """A real child process whose stderr JSON log lines are collected."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path = REPO) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []

    def wait_for_port(self, timeout: float = 20.0) -> int:
        """Read stderr until the 'listening' log line; return its port."""
        deadline = time.monotonic() + timeout
        assert self.popen.stderr is not None
        while time.monotonic() < deadline:
            line = self.popen.stderr.readline()
            if not line:
                raise AssertionError(f"process exited ({self.popen.poll()}): {''.join(self.lines)}")
            self.lines.append(line)
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "listening on" in entry.get("msg", "") and "port" in entry:
                return int(entry["port"])
        raise AssertionError("no 'listening' line: " + "".join(self.lines))

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(10)


@pytest.fixture
def spawn() -> Iterator[Callable[..., Proc]]:
    """Start real processes; every one is killed at teardown."""
    procs: list[Proc] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Proc:
        proc = Proc(list(args), env or python_env())
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()
