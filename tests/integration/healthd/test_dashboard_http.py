"""healthd's dashboard over real HTTP: it answers only its configured Host names (DNS
rebinding defence), /metrics stays scrapeable by IP, and the component controls need an
ADMIN bearer token checked by healthd itself."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from healthd._daemon import Daemon
from services.security import Level, new_key
from tests.healthd_util import config, eventually
from tests.integration.healthd.conftest import free_port, grpc_service

ADMIN, ADMIN_ENTRY = new_key("ops", Level.ADMIN, n=1 << 4)
USER, USER_ENTRY = new_key("viewer", Level.AUTHENTICATED, n=1 << 4)
COMP = "disk"


def _cfg(**dashboard: Any) -> Any:
    check = {"kind": "exec", "argv": [sys.executable, "-c", "pass"], "interval_s": 0.2}
    return config(
        server={"port": 0},
        http={"port": 0},
        mode="sidecar",
        dashboard=dashboard,
        auth={"api_keys": [ADMIN_ENTRY.model_dump(mode="json"), USER_ENTRY.model_dump(mode="json")]},
        components=[{"name": COMP, "checks": [check], "healing": {"action": "command", "command": ["true"]}}],
    )


@pytest.fixture
async def daemon() -> AsyncIterator[Daemon]:
    d = Daemon(_cfg(), sink=lambda _line: None)
    await d.start()
    yield d
    await d.stop()


async def _get(port: int, path: str, host: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"http://127.0.0.1:{port}{path}", headers={"Host": host}) as resp,
    ):
        return resp.status, await resp.text()


async def _control(port: int, body: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"http://127.0.0.1:{port}/api/control", json=body, headers=headers) as resp,
    ):
        return resp.status, await resp.json()


@pytest.mark.parametrize(
    "path", ["/", "/api/health", "/events", "/report", "/static/dashboard.js", "/api/runs"]
)
async def test_foreign_host_names_are_refused(daemon: Daemon, path: str) -> None:
    port = daemon.dashboard.port
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.nip.io:{port}", "localhost:1", ""):
        status, _ = await _get(port, path, host)
        assert status == 421, (host, status)


async def test_loopback_names_with_the_port_are_answered(daemon: Daemon) -> None:
    port = daemon.dashboard.port
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):
        status, body = await _get(port, "/api/health", host)
        assert status == 200 and '"components"' in body, host
    # Prometheus scrapes by pod IP: /metrics is exempt and has no secrets
    status, body = await _get(port, "/metrics", "10.1.2.3:8050")
    assert status == 200 and "healthd_" in body


async def test_configured_names_replace_the_defaults() -> None:
    d = Daemon(_cfg(allowed_hosts=["vigil.internal", "ops.example:443"]), sink=lambda _line: None)
    await d.start()
    try:
        port = d.dashboard.port
        assert (await _get(port, "/", "vigil.internal:9999"))[0] == 200  # bare name: any port
        assert (await _get(port, "/", "ops.example:443"))[0] == 200
        assert (await _get(port, "/", "ops.example:80"))[0] == 421
        assert (await _get(port, "/", f"localhost:{port}"))[0] == 421
    finally:
        await d.stop()


async def test_controls_need_an_admin_token(daemon: Daemon) -> None:
    port = daemon.dashboard.port
    on = {"component": COMP, "action": "maintenance_on", "reason": "disk swap"}
    status, body = await _control(port, on, None)
    assert (status, body["code"]) == (401, "UNAUTHENTICATED")
    status, body = await _control(port, on, "vgl_nope")
    assert status == 401
    status, body = await _control(port, on, USER)
    assert (status, body["code"]) == (403, "PERMISSION_DENIED") and "ADMIN" in body["error"]
    assert not daemon.engine.snapshot().components[0].maintenance

    status, body = await _control(port, on, ADMIN)
    assert status == 200 and body["message"] == "maintenance on"
    view = daemon.engine.snapshot().components[0]
    assert view.maintenance
    events = daemon.engine.events.since(0, COMP, limit=0)
    assert any("ops: disk swap" in e.message for e in events)  # who did it, as over gRPC

    status, body = await _control(port, {"component": COMP, "action": "heal"}, ADMIN)
    assert (status, body["code"]) == (409, "FAILED_PRECONDITION") and "maintenance" in body["error"]
    status, _ = await _control(port, {"component": COMP, "action": "maintenance_off"}, ADMIN)
    assert status == 200 and not daemon.engine.snapshot().components[0].maintenance
    status, body = await _control(port, {"component": COMP, "action": "heal"}, ADMIN)
    assert status == 200 and body["started"] is True

    status, body = await _control(port, {"component": "nope", "action": "heal"}, ADMIN)
    assert (status, body["code"]) == (404, "NOT_FOUND")
    status, body = await _control(port, {"component": COMP, "action": "explode"}, ADMIN)
    assert status == 400 and "heal" in body["error"]
    # The reason is bounded as over gRPC (refused, not cut), and escaped.
    status, body = await _control(port, {"component": COMP, "action": "heal", "reason": "x" * 501}, ADMIN)
    assert (status, body["code"]) == (400, "INVALID_ARGUMENT") and "longer than 500" in body["error"]
    status, body = await _control(port, {"component": COMP, "action": "\x1b[2J" + "a" * 10_000}, ADMIN)
    assert status == 400 and "\x1b" not in body["error"] and len(body["error"]) < 200


async def test_runs_view_off_without_a_workflow_address(daemon: Daemon) -> None:
    port = daemon.dashboard.port
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"http://127.0.0.1:{port}/api/runs", headers={"Authorization": f"Bearer {ADMIN}"}) as resp,
    ):
        assert resp.status == 409 and "workflow_address" in (await resp.json())["error"]
    assert daemon.dashboard.model.state()["runs_view"] is False


async def test_restart_stop_start_a_supervised_component(daemon: Daemon) -> None:
    """Without a supervised process the dashboard says so (409); with one, see below."""
    status, body = await _control(daemon.dashboard.port, {"component": COMP, "action": "restart"}, ADMIN)
    assert (status, body["code"]) == (409, "FAILED_PRECONDITION") and "supervised" in body["error"]


async def test_process_controls_of_a_supervised_child() -> None:
    name = "ctl.v1.Child"
    cfg = config(
        server={"port": 0},
        http={"port": 0},
        auth={"api_keys": [ADMIN_ENTRY.model_dump(mode="json")]},
        components=[grpc_service(name, free_port())],
    )
    d = Daemon(cfg, sink=lambda _line: None)
    await d.start()
    try:
        port = d.dashboard.port

        def view() -> Any:
            return d.engine.snapshot().components[0]

        await eventually(lambda: view().health.status.value == "SERVING", timeout=20)
        first = view().pid
        status, body = await _control(port, {"component": "Child", "action": "restart"}, ADMIN)  # short name
        assert status == 200 and body["component"] == name, body
        await eventually(
            lambda: view().pid not in (None, first) and view().health.status.value == "SERVING", 20
        )
        status, _ = await _control(port, {"component": name, "action": "stop"}, ADMIN)
        assert status == 200 and view().heal_state.value == "STOPPED"
        assert d.dashboard.model.state()["components"][0]["heal_state"] == "STOPPED"
        status, _ = await _control(port, {"component": name, "action": "start"}, ADMIN)
        assert status == 200
        await eventually(lambda: view().health.status.value == "SERVING", timeout=20)
        status, _ = await _control(port, {"component": name, "action": "restart"}, USER)
        assert status == 401  # the viewer key is not in this healthd's key material at all
    finally:
        await d.stop()
