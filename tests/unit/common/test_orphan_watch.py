"""The orphan watch: the supervisor pid is read once from the environment and passed in."""

from __future__ import annotations

import asyncio
import os

import pytest

from services.common import SUPERVISOR_PID_ENV, ServerConfig, VigilServer
from services.common._server import _stop_when_orphaned, _supervisor_pid


@pytest.mark.parametrize(
    ("env", "pid"),
    [
        ({}, None),
        ({SUPERVISOR_PID_ENV: ""}, None),
        ({SUPERVISOR_PID_ENV: "abc"}, None),
        ({SUPERVISOR_PID_ENV: "\u00b2"}, None),  # isdigit() but not a number int() takes
        ({SUPERVISOR_PID_ENV: "4242"}, 4242),
    ],
)
def test_supervisor_pid_from_an_environment(env: dict[str, str], pid: int | None) -> None:
    assert _supervisor_pid(env) == pid


async def test_a_server_whose_supervisor_is_not_its_parent_stops() -> None:
    server = VigilServer(ServerConfig(port=0, grace_period_s=0), "orphan")
    await server.start()
    gone = os.getppid() + 1_000_000  # never our parent
    await asyncio.wait_for(_stop_when_orphaned(server, gone, interval_s=0.01), 5)
    await asyncio.wait_for(server.wait(), 5)
