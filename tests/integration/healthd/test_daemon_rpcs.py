"""vigil.healthd.v1.HealthDaemon over a real server: reads open, ADMIN-gated actions, paging."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2 as _hpb

from services.common import bad_request_violations
from tests.healthd_util import eventually, flag_check
from vigil.healthd.v1 import healthd_pb2 as _pb

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def _components(flag: Path) -> list[dict[str, Any]]:
    return [
        {"name": "db", "checks": [flag_check(flag)], "degrades_to": "READ_ONLY"},
        {
            "name": "api",
            "depends_on": ["db"],
            "process": {"argv": SLEEPER},
            "checks": [{"kind": "process", "interval_s": 0.1, "failure_threshold": 1}],
            "healing": {"action": "restart", "backoff_base_s": 0.1},
        },
    ]


def _auth(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


async def _code(coro: Any) -> grpc.StatusCode:
    try:
        await coro
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.fixture
async def running(start_daemon: Any, tmp_path: Path) -> Any:
    flag = tmp_path / "db-up"
    flag.touch()
    r = await start_daemon(components=_components(flag), level_recovery_s=0)
    r.flag = flag
    await eventually(lambda: r.engine.snapshot().system.status.value == "HEALTHY", 10)
    return r


async def test_get_system_health_reports_dependency_and_level(running: Any) -> None:
    health = (await running.stub.GetSystemHealth(_pb.GetSystemHealthRequest())).health
    assert (health.status, health.score, health.degradation_level) == (
        _pb.SYSTEM_STATUS_HEALTHY,
        100,
        _pb.DEGRADATION_LEVEL_NORMAL,
    )
    assert health.live and health.ready
    api = health.components[1]
    assert api.name == "api" and api.pid > 0 and list(api.depends_on) == ["db"]
    assert [c.kind for c in api.checks] == ["process"]
    running.flag.unlink()
    await eventually(lambda: running.engine.snapshot().system.status.value == "UNHEALTHY", 5)
    health = (await running.stub.GetSystemHealth(_pb.GetSystemHealthRequest())).health
    assert health.components[1].blocked_by == "db"
    assert health.components[1].status == _pb.COMPONENT_STATUS_NOT_SERVING
    assert health.degradation_level == _pb.DEGRADATION_LEVEL_OFFLINE and not health.ready


async def test_watch_system_health_sends_current_then_changes(running: Any) -> None:
    call = running.stub.WatchSystemHealth(_pb.WatchSystemHealthRequest())
    first = await call.read()
    assert first.health.status == _pb.SYSTEM_STATUS_HEALTHY and not first.events
    running.flag.unlink()
    while True:
        update = await asyncio.wait_for(call.read(), 5)
        if update.health.status == _pb.SYSTEM_STATUS_UNHEALTHY:
            break
    types = {e.type for e in update.events}
    assert _pb.EVENT_TYPE_COMPONENT_STATUS_CHANGED in types or _pb.EVENT_TYPE_SYSTEM_STATUS_CHANGED in types
    call.cancel()


async def test_mutating_rpcs_need_an_admin_token(running: Any, tokens: dict[str, Any]) -> None:
    req = _pb.CheckNowRequest(component="db")
    assert await _code(running.stub.CheckNow(req)) is grpc.StatusCode.UNAUTHENTICATED
    assert (
        await _code(running.stub.CheckNow(req, metadata=_auth("vgl_nope_nope")))
        is grpc.StatusCode.UNAUTHENTICATED
    )
    assert (
        await _code(running.stub.CheckNow(req, metadata=_auth(tokens["user"])))
        is grpc.StatusCode.PERMISSION_DENIED
    )
    ok = await running.stub.CheckNow(req, metadata=_auth(tokens["admin"]))
    assert ok.component.name == "db" and ok.component.status == _pb.COMPONENT_STATUS_SERVING
    heal = _pb.HealRequest(component="api", reason="test")
    assert await _code(running.stub.Heal(heal)) is grpc.StatusCode.UNAUTHENTICATED
    maint = _pb.SetMaintenanceRequest(component="api", enabled=True)
    assert await _code(running.stub.SetMaintenance(maint)) is grpc.StatusCode.UNAUTHENTICATED


async def test_unknown_component_and_bad_requests(running: Any, tokens: dict[str, Any]) -> None:
    admin = _auth(tokens["admin"])
    for call in (
        running.stub.CheckNow(_pb.CheckNowRequest(component="zzz"), metadata=admin),
        running.stub.Heal(_pb.HealRequest(component="zzz"), metadata=admin),
        running.stub.SetMaintenance(_pb.SetMaintenanceRequest(component="zzz"), metadata=admin),
    ):
        assert await _code(call) is grpc.StatusCode.NOT_FOUND
    assert (
        await _code(running.stub.CheckNow(_pb.CheckNowRequest(), metadata=admin))
        is grpc.StatusCode.INVALID_ARGUMENT
    )
    # db has no healing action configured.
    assert (
        await _code(running.stub.Heal(_pb.HealRequest(component="db"), metadata=admin))
        is grpc.StatusCode.FAILED_PRECONDITION
    )
    for bad in (_pb.ListEventsRequest(page_size=5000), _pb.ListEventsRequest(page_token="abc")):
        assert await _code(running.stub.ListEvents(bad)) is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("token", ["abc", "\u00b2", "\u0663", "5" * 5000, "9" * 19, "-1", " 1"])
async def test_list_events_rejects_a_page_token_it_never_issued(running: Any, token: str) -> None:
    """Unicode digits (int() chokes on "²") and huge numbers are bad input, never INTERNAL."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.stub.ListEvents(_pb.ListEventsRequest(page_token=token))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in bad_request_violations(caught.value)] == ["page_token"]
    # the server stays up and answers good requests
    assert (await running.stub.ListEvents(_pb.ListEventsRequest(page_size=1))).events


async def test_heal_restarts_and_is_recorded(running: Any, tokens: dict[str, Any]) -> None:
    child = running.engine.supervisor.children["api"]
    old = child.pid
    resp = await running.stub.Heal(
        _pb.HealRequest(component="api", reason="rotate"), metadata=_auth(tokens["admin"])
    )
    assert resp.started
    await eventually(lambda: child.restarts == 1 and child.pid != old, 5)
    events = (await running.stub.ListEvents(_pb.ListEventsRequest(component="api"))).events
    started = [e for e in events if e.type == _pb.EVENT_TYPE_HEAL_STARTED]
    assert started and "manual heal by ops: rotate" in started[0].message


async def test_maintenance_pauses_and_is_visible(running: Any, tokens: dict[str, Any]) -> None:
    admin = _auth(tokens["admin"])
    req = _pb.SetMaintenanceRequest(component="db", enabled=True, reason="migrating")
    resp = await running.stub.SetMaintenance(req, metadata=admin)
    assert resp.component.maintenance and resp.component.healing_state == _pb.HEALING_STATE_MAINTENANCE
    running.flag.unlink()
    # A check run now fails, yet while paused its result changes nothing.
    await running.stub.CheckNow(_pb.CheckNowRequest(component="db"), metadata=admin)
    assert running.engine.snapshot().system.status.value == "HEALTHY"
    assert await _code(running.stub.Heal(_pb.HealRequest(component="db"), metadata=admin)) in (
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    await running.stub.SetMaintenance(
        _pb.SetMaintenanceRequest(component="db", enabled=False), metadata=admin
    )
    await eventually(lambda: running.engine.snapshot().system.status.value == "UNHEALTHY", 5)


async def test_list_events_pages_newest_first(running: Any) -> None:
    for _ in range(3):
        running.flag.unlink()
        await eventually(lambda: running.engine.statuses()["db"].value == "NOT_SERVING", 5)
        running.flag.touch()
        await eventually(lambda: running.engine.statuses()["db"].value == "SERVING", 5)
    seen: list[int] = []
    token = ""
    while True:
        page = await running.stub.ListEvents(_pb.ListEventsRequest(page_size=4, page_token=token))
        seen += [e.seq for e in page.events]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) > 8
    assert seen == [e.seq for e in reversed(running.engine.events.since(0, limit=0))]


async def test_health_names_follow_engine(running: Any) -> None:
    statuses = (await running.health.List(_hpb.HealthListRequest())).statuses
    assert statuses["readiness"].status == _hpb.HealthCheckResponse.SERVING
    assert statuses[""].status == _hpb.HealthCheckResponse.SERVING
