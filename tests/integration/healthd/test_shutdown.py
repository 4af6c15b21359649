"""Operator actions that arrive while healthd is shutting down are refused, and start nothing."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import grpc

from healthd._daemon import Daemon
from tests.healthd_util import assert_no_pid, config, eventually, pid_alive
from vigil.healthd.v1 import healthd_pb2 as _pb
from vigil.healthd.v1 import healthd_pb2_grpc as _pb_grpc

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
# Ignores SIGTERM: its stop takes the whole grace, the window in which actions arrive.
STUBBORN = [
    sys.executable,
    "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)",
]
PROCESS_CHECK = {"kind": "process", "interval_s": 0.1, "failure_threshold": 1}


async def test_actions_during_shutdown_are_unavailable_and_spawn_nothing(tokens: dict[str, Any]) -> None:
    cfg = config(
        server={"port": 0},
        http={"port": 0},
        auth={"api_keys": [e.model_dump(mode="json") for e in tokens["entries"]]},
        components=[
            {"name": "db", "process": {"argv": STUBBORN, "grace_s": 3}, "checks": [PROCESS_CHECK]},
            {
                "name": "api",
                "depends_on": ["db"],
                "process": {"argv": SLEEPER},
                "checks": [PROCESS_CHECK],
                "healing": {"action": "restart", "backoff_base_s": 0.1},
            },
        ],
    )
    daemon = Daemon(cfg, sink=lambda _line: None)
    port = await daemon.start()
    api = daemon.engine.supervisor.children["api"]
    seen: set[int] = set()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = _pb_grpc.HealthDaemonStub(channel)
        auth = [("authorization", f"Bearer {tokens['admin']}")]
        await eventually(lambda: daemon.engine.snapshot().system.status.value == "HEALTHY", 10)
        seen.update(daemon.engine.supervisor.pids())
        stopping = asyncio.ensure_future(daemon.stop())
        try:
            # api (the dependent) is stopped first; db then holds the shutdown for its grace.
            await eventually(lambda: not api.running, 5)
            calls: dict[str, Any] = {  # one after the other: a unary call starts when made
                "start": lambda: stub.ControlComponent(
                    _pb.ControlComponentRequest(component="api", action=_pb.CONTROL_ACTION_START),
                    metadata=auth,
                ),
                "restart": lambda: stub.ControlComponent(
                    _pb.ControlComponentRequest(component="api", action=_pb.CONTROL_ACTION_RESTART),
                    metadata=auth,
                ),
                "heal": lambda: stub.Heal(_pb.HealRequest(component="api", reason="now"), metadata=auth),
                "check now": lambda: stub.CheckNow(_pb.CheckNowRequest(component="api"), metadata=auth),
                "maintenance": lambda: stub.SetMaintenance(
                    _pb.SetMaintenanceRequest(component="api", enabled=True), metadata=auth
                ),
            }
            answers = {}
            for what, call in calls.items():
                try:
                    await call()
                    answers[what] = ("OK", "")
                except grpc.aio.AioRpcError as exc:
                    answers[what] = (exc.code().name, exc.details())
                if api.pid is not None:
                    seen.add(api.pid)
                if what == "start":
                    started = api.running
            assert not started, "a child was started after shutdown began"
            assert answers == {what: ("UNAVAILABLE", "healthd is shutting down") for what in calls}
            assert not stopping.done(), "the shutdown window closed before the calls were made"
        finally:
            await stopping
    assert not api.running
    assert not any(pid_alive(pid) for pid in seen | set(daemon.engine.supervisor.pids()))
    assert_no_pid(sorted(seen))
    # Nothing an operator asked during shutdown reached the audit trail or the events.
    assert not [e for e in daemon.engine.events.since(0, "api", limit=0) if "by ops" in e.message]
