"""Helpers shared by healthd's unit, integration and end-to-end tests."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from healthd import HealthdConfig
from tests.conftest import eventually

__all__ = [
    "assert_no_pid",
    "config",
    "eventually",
    "exec_check",
    "flag_check",
    "garbage_server",
    "pid_alive",
    "proc_check",
]


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def config(**data: Any) -> HealthdConfig:
    """A validated config from keyword data (as YAML would give it)."""
    return HealthdConfig.model_validate(data)


def proc_check(**kw: Any) -> dict[str, Any]:
    """A fast process check."""
    return {"kind": "process", "interval_s": 0.1, "timeout_s": 0.5, "failure_threshold": 1, **kw}


def exec_check(code: int = 0, **kw: Any) -> dict[str, Any]:
    """An exec check exiting with ``code``."""
    return {"kind": "exec", "argv": [sys.executable, "-c", f"raise SystemExit({code})"], **kw}


def flag_check(flag: Path, **kw: Any) -> dict[str, Any]:
    """A fast exec check that passes while ``flag`` exists (tests toggle the file)."""
    return {
        "kind": "exec",
        "argv": ["test", "-e", str(flag)],
        "interval_s": 0.1,
        "failure_threshold": 1,
        **kw,
    }


def assert_no_pid(pids: list[int]) -> None:
    """Every pid is gone (no orphans)."""
    alive = [p for p in pids if pid_alive(p)]
    assert not alive, f"processes still alive: {alive}"


async def garbage_server() -> tuple[asyncio.Server, int]:
    """A TCP server on port 0 that answers any request with a line that is not HTTP."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"garbage\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]
