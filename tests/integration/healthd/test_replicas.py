"""Replicas under healthd with real processes: one shared port, a private health port each,
independent healing, operator control (ControlComponent), TailLog and fail-fast start-up."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2 as _hpb
from grpc_health.v1 import health_pb2_grpc as _hpb_grpc

from bench import free_ports
from tests.healthd_util import eventually, pid_alive
from tests.integration.healthd.conftest import REPO, free_port
from vigil.healthd.v1 import healthd_pb2 as _pb

SERVER = str(Path(__file__).with_name("replica_server.py"))
NAME = "vigil.demo.v1.DemoService"


def replicated(port: int, health_port: int, replicas: int = 2, **env: str) -> dict[str, Any]:
    return {
        "name": NAME,
        "replicas": replicas,
        "process": {
            "argv": [sys.executable, SERVER],
            "env": {"VIGIL_CHILD_SERVER__PORT": str(port), "VIGIL_CHILD_SERVICE": NAME, **env},
            "env_prefix": "VIGIL_CHILD_",
            "health_port": health_port,
            "cwd": str(REPO),
            "grace_s": 2,
        },
        "checks": [
            {
                "kind": "grpc",
                "address": f"127.0.0.1:{port}",
                "service": NAME,
                "interval_s": 0.2,
                "timeout_s": 0.5,
            },
            {"kind": "process", "interval_s": 0.2, "failure_threshold": 1},
        ],
        "healing": {"action": "restart", "backoff_base_s": 0.2, "backoff_cap_s": 1, "start_timeout_s": 15},
    }


def _auth(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


async def _component(r: Any) -> _pb.ComponentHealth:
    health = (await r.stub.GetSystemHealth(_pb.GetSystemHealthRequest(), timeout=5)).health
    return next(c for c in health.components if c.name == NAME)


async def _serving(r: Any, n: int) -> bool:
    c = await _component(r)
    return c.replicas_serving == n and all(x.pid > 0 for x in c.replicas)


@pytest.fixture
async def replicas(start_daemon: Any, tmp_path: Path) -> Any:
    port, base = free_port(), free_ports(2)
    r = await start_daemon(
        components=[replicated(port, base)], level_recovery_s=0, log_dir=str(tmp_path / "logs")
    )
    r.port, r.base, r.logs = port, base, tmp_path / "logs"
    await eventually(lambda: _serving(r, 2), 20, 0.1)
    return r


async def test_replicas_share_the_port_and_heal_one_by_one(replicas: Any) -> None:
    r = replicas
    c = await _component(r)
    assert c.replicas_configured == 2
    pids = [x.pid for x in c.replicas]
    assert len(set(pids)) == 2 and all(pid_alive(p) for p in pids)
    assert [x.health_port for x in c.replicas] == [r.base, r.base + 1]
    # Each private port answers for its own replica; the shared port for whichever the kernel picks.
    for port in (r.port, r.base, r.base + 1):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = await _hpb_grpc.HealthStub(channel).Check(
                _hpb.HealthCheckRequest(service=NAME), timeout=2
            )
            assert reply.status == _hpb.HealthCheckResponse.SERVING
    assert {p.name for p in r.logs.iterdir()} >= {"demo-1.log", "demo-2.log"}

    os.kill(pids[0], signal.SIGKILL)

    async def degraded() -> bool:
        health = (await r.stub.GetSystemHealth(_pb.GetSystemHealthRequest(), timeout=5)).health
        comp = next(x for x in health.components if x.name == NAME)
        return health.status == _pb.SYSTEM_STATUS_DEGRADED and comp.status == _pb.COMPONENT_STATUS_SERVING

    await eventually(degraded, 5, 0.02)
    assert "1/2 replicas serving" in (await _component(r)).message
    await eventually(lambda: _serving(r, 2), 20, 0.1)
    after = await _component(r)
    assert after.replicas[1].pid == pids[1], "the healthy replica was left alone"
    assert after.replicas[0].pid != pids[0] and after.replicas[0].restarts == 1


async def test_control_component_stop_start_restart(
    replicas: Any, tokens: dict[str, Any], caplog: Any
) -> None:
    r, meta = replicas, _auth(tokens["admin"])
    control = r.stub.ControlComponent
    caplog.set_level(logging.INFO, logger="vigil.healthd")
    stop = _pb.ControlComponentRequest(component="demo", action=_pb.CONTROL_ACTION_STOP, replica=2)
    c = (await control(stop, metadata=meta, timeout=10)).component
    assert c.replicas[1].healing_state == _pb.HEALING_STATE_STOPPED and c.replicas[1].pid == 0
    assert any("audit: ops stop " + NAME in rec.getMessage() for rec in caplog.records)
    health = (await r.stub.GetSystemHealth(_pb.GetSystemHealthRequest(), timeout=5)).health
    assert health.status == _pb.SYSTEM_STATUS_HEALTHY, "an operator's stop is not a failure"
    # Stop all: not healed, not counted; start all: back.
    await control(
        _pb.ControlComponentRequest(component="demo", action=_pb.CONTROL_ACTION_STOP), metadata=meta
    )
    c = await _component(r)
    assert all(x.pid == 0 and x.healing_state == _pb.HEALING_STATE_STOPPED for x in c.replicas)
    assert not r.engine.supervisor.pids()
    await control(
        _pb.ControlComponentRequest(component="demo", action=_pb.CONTROL_ACTION_START), metadata=meta
    )
    await eventually(lambda: _serving(r, 2), 20, 0.1)
    # Rolling restart: one replica at a time, the component serving throughout.
    before = [x.pid for x in (await _component(r)).replicas]
    restart = _pb.ControlComponentRequest(component=NAME, action=_pb.CONTROL_ACTION_RESTART)
    c = (await control(restart, metadata=meta, timeout=60)).component
    assert all(x.pid not in before for x in c.replicas) and c.status == _pb.COMPONENT_STATUS_SERVING


async def test_control_and_tail_log_validate(replicas: Any, tokens: dict[str, Any]) -> None:
    r, meta = replicas, _auth(tokens["admin"])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await r.stub.ControlComponent(
            _pb.ControlComponentRequest(component="dmeo", action=_pb.CONTROL_ACTION_STOP), metadata=meta
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and "did you mean" in (info.value.details() or "")
    for bad in (
        _pb.ControlComponentRequest(component="demo"),
        _pb.ControlComponentRequest(component="demo", action=_pb.CONTROL_ACTION_STOP, replica=3),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await r.stub.ControlComponent(bad, metadata=meta)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await r.stub.ControlComponent(
            _pb.ControlComponentRequest(component="demo", action=_pb.CONTROL_ACTION_STOP),
            metadata=_auth(tokens["user"]),
        )
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in r.stub.TailLog(_pb.TailLogRequest(component="demo", lines=-1), metadata=meta):
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_tail_log_sends_history_then_follows(replicas: Any, tokens: dict[str, Any]) -> None:
    r, meta = replicas, _auth(tokens["admin"])
    history = [
        m async for m in r.stub.TailLog(_pb.TailLogRequest(component="demo", lines=100), metadata=meta)
    ]
    assert {m.replica for m in history} == {1, 2}
    assert all(m.component == NAME for m in history)
    assert any("listening on" in m.line for m in history)
    stream = r.stub.TailLog(_pb.TailLogRequest(component="demo", lines=1, follow=True), metadata=meta)
    first = await stream.read()
    assert first.line
    restart = _pb.ControlComponentRequest(component="demo", action=_pb.CONTROL_ACTION_RESTART, replica=2)
    await r.stub.ControlComponent(restart, metadata=meta, timeout=30)

    async def new_listening_line() -> bool:
        reply = await stream.read()
        return reply.replica == 2 and "listening on" in reply.line

    await eventually(new_listening_line, 20, 0)
    stream.cancel()


async def test_exit_2_before_serving_is_fatal_at_once(start_daemon: Any) -> None:
    bad = replicated(free_port(), free_ports(1), replicas=1, VIGIL_CHILD_SERVER__GRACE_PERIOD_S="later")
    r = await start_daemon(components=[bad])

    async def fatal() -> _pb.ComponentHealth | None:
        c = await _component(r)
        return c if c.healing_state == _pb.HEALING_STATE_FATAL else None

    c = await eventually(fatal, 15, 0.05)
    assert c.restarts == 0
    assert any("grace_period_s" in line and "later" in line for line in c.last_output), c.last_output
    assert "config/usage error" in c.message
    assert not (await r.stub.GetSystemHealth(_pb.GetSystemHealthRequest())).health.live


async def test_a_restart_whose_caller_goes_away_still_finishes(replicas: Any, tokens: dict[str, Any]) -> None:
    # Ctrl-C on `vigil ctl restart` (or a short deadline) cancels the call after the stop and
    # before the start: the replica must come back, not stay STOPPED with nobody to start it.
    r, meta = replicas, _auth(tokens["admin"])
    restart = _pb.ControlComponentRequest(component="demo", action=_pb.CONTROL_ACTION_RESTART, replica=2)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await r.stub.ControlComponent(restart, metadata=meta, timeout=0.05)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    async def back() -> bool:
        c = await _component(r)
        return c.replicas[1].healing_state == _pb.HEALING_STATE_HEALTHY and await _serving(r, 2)

    await eventually(back, 20, 0.1)


async def test_a_stop_during_a_rolling_restart_leaves_the_component_stopped(
    replicas: Any, tokens: dict[str, Any]
) -> None:
    r, meta = replicas, _auth(tokens["admin"])
    restart = _pb.ControlComponentRequest(component="demo", action=_pb.CONTROL_ACTION_RESTART)
    stop = _pb.ControlComponentRequest(component="demo", action=_pb.CONTROL_ACTION_STOP)
    rolling = asyncio.ensure_future(r.stub.ControlComponent(restart, metadata=meta, timeout=60))
    await asyncio.sleep(0.3)  # the restart is under way (replica 1 stopped or starting)
    await r.stub.ControlComponent(stop, metadata=meta, timeout=60)
    await rolling
    c = await _component(r)
    assert all(x.healing_state == _pb.HEALING_STATE_STOPPED and x.pid == 0 for x in c.replicas), c.replicas
    assert not r.engine.supervisor.pids()


async def test_ctl_tail_follow_says_so_when_healthd_goes_away(
    replicas: Any, tokens: dict[str, Any], tmp_path: Path
) -> None:
    """`vigil ctl tail -f` never ends silently with rc 0: healthd stopping is exit 3 and a line."""
    r = replicas
    port = r.daemon.server.port
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update(VIGIL_HEALTHD_SERVER__PORT=str(port), VIGIL_TOKEN=tokens["admin"], PYTHONUNBUFFERED="1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "--config-dir", str(tmp_path), "ctl", "tail", "demo", "-f",
        "-n", "1", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip
    try:
        assert await asyncio.wait_for(proc.stdout.readline(), 60)  # type: ignore[union-attr]
        await r.daemon.server.stop(0.5)
        rc = await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
    err = (await proc.stderr.read()).decode()  # type: ignore[union-attr]
    assert rc == 3 and "ended the log stream" in err, (rc, err)
