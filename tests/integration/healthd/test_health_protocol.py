"""grpc.health.v1 on healthd over a real server: Check/Watch/List, fan-out, death as an event."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2 as _hpb

from healthd import HealState
from tests.healthd_util import eventually, flag_check, pid_alive
from vigil.healthd.v1 import healthd_pb2 as _pb

from .conftest import free_port, grpc_service

SERVING = _hpb.HealthCheckResponse.SERVING
NOT_SERVING = _hpb.HealthCheckResponse.NOT_SERVING
UNKNOWN = _hpb.HealthCheckResponse.SERVICE_UNKNOWN
SVC = "vigil.test.v1.EchoService"


def _flag_component(name: str, flag: Path, critical: bool = True) -> dict[str, Any]:
    return {"name": name, "critical": critical, "checks": [flag_check(flag)]}


async def _check(running: Any, name: str) -> int:
    return (await running.health.Check(_hpb.HealthCheckRequest(service=name), timeout=2)).status


async def test_kill_9_not_serving_on_watch_within_a_second_then_serving(start_daemon: Any) -> None:
    running = await start_daemon(components=[grpc_service(SVC, free_port())])
    call = running.health.Watch(_hpb.HealthCheckRequest(service=SVC))
    seen = [(await call.read()).status]
    while seen[-1] != SERVING:
        seen.append((await asyncio.wait_for(call.read(), 15)).status)
    child = running.engine.supervisor.children[SVC]
    old = child.pid
    loop = asyncio.get_running_loop()
    killed_at = loop.time()
    os.kill(old, signal.SIGKILL)
    assert (await asyncio.wait_for(call.read(), 1.0)).status == NOT_SERVING
    assert loop.time() - killed_at < 1.0
    assert (await asyncio.wait_for(call.read(), 15)).status == SERVING
    assert child.pid != old and not pid_alive(old)
    call.cancel()
    events = await running.stub.ListEvents(
        _pb.ListEventsRequest(component=SVC, types=[_pb.EVENT_TYPE_HEAL_STARTED])
    )
    assert len(events.events) == 1
    health = (await running.stub.GetSystemHealth(_pb.GetSystemHealthRequest())).health
    assert health.components[0].restarts == 1


async def test_sigstop_detected_by_timeout_and_restarted(start_daemon: Any) -> None:
    running = await start_daemon(components=[grpc_service(SVC, free_port())])
    await eventually(lambda: running.engine.statuses()[SVC].value == "SERVING", 15)
    assert await _check(running, SVC) == SERVING
    child = running.engine.supervisor.children[SVC]
    frozen = child.pid
    os.kill(frozen, signal.SIGSTOP)
    await eventually(lambda: child.restarts == 1, 10)
    assert not pid_alive(frozen)
    await eventually(lambda: running.engine.statuses()[SVC].value == "SERVING", 15)
    messages = [e.message for e in running.engine.events.since(component=SVC)]
    assert any("DEADLINE_EXCEEDED" in m or "timed out" in m for m in messages), messages


async def test_always_crashing_backs_off_then_fatal_and_liveness_not_serving(start_daemon: Any) -> None:
    crasher = {
        "name": "crashy",
        "process": {"argv": [sys.executable, "-c", "raise SystemExit(1)"]},
        "checks": [{"kind": "process", "interval_s": 0.2, "failure_threshold": 1}],
        "healing": {"action": "restart", "backoff_base_s": 0.05, "backoff_cap_s": 0.4, "max_attempts": 4},
    }
    running = await start_daemon(components=[crasher])
    call = running.health.Watch(_hpb.HealthCheckRequest(service="liveness"))
    assert (await call.read()).status == SERVING
    assert (await asyncio.wait_for(call.read(), 15)).status == NOT_SERVING
    call.cancel()
    assert running.engine.snapshot().components[0].heal_state is HealState.FATAL
    delays = [e for e in running.engine.events.since(component="crashy") if e.new == "BACKOFF"]
    assert len(delays) == 3
    health = (await running.stub.GetSystemHealth(_pb.GetSystemHealthRequest())).health
    assert not health.live and health.components[0].healing_state == _pb.HEALING_STATE_FATAL
    escalations = await running.stub.ListEvents(_pb.ListEventsRequest(types=[_pb.EVENT_TYPE_ESCALATED]))
    assert len(escalations.events) == 1 and "FATAL" in escalations.events[0].message


async def test_hundreds_of_watchers_all_see_each_change_despite_slow_and_closed_ones(
    start_daemon: Any, tmp_path: Path
) -> None:
    flag = tmp_path / "up"
    flag.touch()
    running = await start_daemon(components=[_flag_component("cache", flag, critical=False)])
    await eventually(lambda: running.engine.statuses()["cache"].value == "SERVING")
    watchers = [running.health.Watch(_hpb.HealthCheckRequest(service="cache")) for _ in range(300)]
    assert {(await w.read()).status for w in watchers} == {SERVING}
    # Slow watchers never read again; closed ones are cancelled: neither may stall the rest.
    slow = [running.health.Watch(_hpb.HealthCheckRequest(service="cache")) for _ in range(20)]
    closed = [running.health.Watch(_hpb.HealthCheckRequest(service="cache")) for _ in range(20)]
    for c in closed:
        await c.read()
        c.cancel()
    for expected, toggle in ((NOT_SERVING, flag.unlink), (SERVING, flag.touch)):
        toggle()
        got = await asyncio.wait_for(asyncio.gather(*(w.read() for w in watchers)), 10)
        assert {r.status for r in got} == {expected}
    for w in [*watchers, *slow]:
        w.cancel()


async def test_check_unknown_is_not_found_and_watch_unknown_stays_open(
    start_daemon: Any, tmp_path: Path
) -> None:
    running = await start_daemon(components=[_flag_component("a", tmp_path / "x")])
    try:
        await running.health.Check(_hpb.HealthCheckRequest(service="nope"), timeout=2)
        raise AssertionError("expected NOT_FOUND")
    except grpc.aio.AioRpcError as exc:
        assert exc.code() is grpc.StatusCode.NOT_FOUND
    call = running.health.Watch(_hpb.HealthCheckRequest(service="nope"))
    assert (await call.read()).status == UNKNOWN
    done, _ = await asyncio.wait({asyncio.ensure_future(call.read())}, timeout=0.3)
    assert not done and not call.done()  # still open, nothing more to say
    call.cancel()


async def test_list_matches_config(start_daemon: Any, tmp_path: Path) -> None:
    names = ["store", "vigil.workflow.v1.WorkflowService", "cache"]
    running = await start_daemon(components=[_flag_component(n, tmp_path / n) for n in names])
    listed = (await running.health.List(_hpb.HealthListRequest(), timeout=2)).statuses
    assert set(listed) == {"", "liveness", "readiness", *names, "vigil.healthd.v1.HealthDaemon"}
    assert listed["liveness"].status == SERVING


async def test_check_and_list_follow_each_change_a_watcher_sees(start_daemon: Any, tmp_path: Path) -> None:
    flag = tmp_path / "up"
    flag.touch()
    running = await start_daemon(components=[_flag_component("a", flag)])
    call = running.health.Watch(_hpb.HealthCheckRequest(service="a"))
    for want in (SERVING, NOT_SERVING, SERVING):
        if want == NOT_SERVING:
            flag.unlink()
        else:
            flag.touch()
        while (await asyncio.wait_for(call.read(), 15)).status != want:
            pass
        # The moment a watcher has the change, Check and List answer with it too.
        assert await _check(running, "a") == want
        listed = (await running.health.List(_hpb.HealthListRequest(), timeout=2)).statuses
        assert listed["a"].status == want
    call.cancel()
