"""Fixtures for healthd over real gRPC: a daemon on port 0, clients, tokens, free ports."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2_grpc as _hpb_grpc

from healthd._daemon import Daemon
from services.security import Level, new_key
from tests.conftest import python_env
from tests.healthd_util import assert_no_pid, config
from vigil.healthd.v1 import healthd_pb2_grpc as _pb_grpc

CHILD = str(Path(__file__).with_name("child_server.py"))
REPO = Path(__file__).resolve().parents[3]


async def run_healthd(*args: str, timeout: float = 20) -> tuple[int, str, str]:
    """Run ``python -m healthd ARGS`` to completion without blocking the event loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "healthd",
        *args,
        cwd=REPO,
        env=python_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def grpc_service(name: str, port: int, **healing: Any) -> dict[str, Any]:
    """A supervised child gRPC server component with a Watch-holding grpc check and a process check."""
    return {
        "name": name,
        "process": {"argv": [sys.executable, CHILD, str(port), name], "grace_s": 2, "cwd": str(REPO)},
        "checks": [
            {
                "kind": "grpc",
                "address": f"127.0.0.1:{port}",
                "service": name,
                "interval_s": 0.2,
                "timeout_s": 0.3,
                "failure_threshold": 2,
            },
            {"kind": "process", "interval_s": 0.5, "failure_threshold": 1},
        ],
        "healing": {
            "action": "restart",
            "backoff_base_s": 0.2,
            "backoff_cap_s": 1,
            "start_timeout_s": 10,
            **healing,
        },
    }


@pytest.fixture(scope="session")
def tokens() -> dict[str, Any]:
    """An ADMIN and an AUTHENTICATED API key (cheap scrypt for speed)."""
    admin, admin_entry = new_key("ops", Level.ADMIN, n=2**10)
    user, user_entry = new_key("someone", Level.AUTHENTICATED, n=2**10)
    return {"admin": admin, "user": user, "entries": [admin_entry, user_entry]}


class Running:
    """A started daemon with a channel to it."""

    def __init__(self, daemon: Daemon, channel: grpc.aio.Channel) -> None:
        self.daemon = daemon
        self.engine = daemon.engine
        self.channel = channel
        self.health = _hpb_grpc.HealthStub(channel)
        self.stub = _pb_grpc.HealthDaemonStub(channel)


@pytest.fixture
async def start_daemon(tokens: dict[str, Any]) -> AsyncIterator[Callable[..., Any]]:
    started: list[Running] = []

    async def start(**data: Any) -> Running:
        data.setdefault("server", {"port": 0})
        data.setdefault("http", {"port": 0})  # dashboard on a free port
        data.setdefault("auth", {"api_keys": [e.model_dump(mode="json") for e in tokens["entries"]]})
        daemon = Daemon(config(**data), sink=lambda _line: None)
        port = await daemon.start()
        running = Running(daemon, grpc.aio.insecure_channel(f"127.0.0.1:{port}"))
        started.append(running)
        return running

    yield start
    for running in started:
        pids = running.engine.supervisor.pids()
        await running.channel.close()
        await running.daemon.stop()
        assert_no_pid(pids)
