"""healthd traces every check and heal action and meters them: a real supervised child is
SIGKILLed and restarted; spans reach a real OTLP receiver; healthd's HTTP port serves
/metrics, /api/health and /report describing what happened."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from healthd._daemon import Daemon
from tests.conftest import eventually
from tests.healthd_util import config
from tests.integration.healthd.conftest import free_port, grpc_service
from tests.obs_support import OtlpReceiver

NAME = "vigil.workflow.v1.WorkflowService"
CLIENT = 3


async def _get(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200, url
        return await resp.text()


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


async def test_checks_and_heals_are_traced_and_metered(otlp: OtlpReceiver) -> None:
    cfg = config(server={"port": 0}, http={"port": 0}, components=[grpc_service(NAME, free_port())])
    daemon = Daemon(cfg, sink=lambda _line: None)
    await daemon.start()
    base = daemon.dashboard.url
    try:
        view = lambda: daemon.engine.snapshot().components[0]  # noqa: E731
        await eventually(lambda: view().health.status.value == "SERVING", timeout=15)
        pid = daemon.engine.supervisor.children[NAME].pid
        assert pid
        os.kill(pid, signal.SIGKILL)
        await eventually(lambda: view().restarts >= 1 and view().health.status.value == "SERVING", timeout=15)

        checks = {"component": NAME, "check": "grpc"}
        status_key = ("vigil_healthd_check_status", frozenset(checks.items()))

        async def polled_serving() -> dict[Any, float] | None:
            found = _samples(await _get(base + "metrics"))
            return found if found.get(status_key) == 1 else None  # last polled result

        metrics = await eventually(polled_serving, timeout=10)
        heal_ok = ("vigil_healthd_heal_attempts_total", frozenset(
            {"component": NAME, "action": "restart", "result": "ok"}.items()))  # fmt: skip
        assert metrics[heal_ok] >= 1
        assert metrics[("vigil_healthd_check_seconds_count", frozenset(checks.items()))] >= 1
        assert metrics[("vigil_healthd_component_up", frozenset({"component": NAME}.items()))] == 1

        state: dict[str, Any] = json.loads(await _get(base + "api/health"))
        comp = state["components"][0]
        assert comp["name"] == NAME and comp["restarts"] >= 1 and comp["latency"]
        assert any(e["kind"] == "HEAL_RESULT" for e in state["events"])
        report = await _get(base + "report")
        assert NAME in report and "HEAL_RESULT" in report and "<svg" in report
    finally:
        await daemon.stop()

    def traced() -> bool:
        names = {s.name for s in otlp.spans}
        return {"healthd.check", "healthd.heal"} <= names

    await eventually(traced, timeout=10)
    heal = next(s for s in otlp.spans if s.name == "healthd.heal")
    assert heal.attributes["vigil.component"] == NAME and heal.attributes["vigil.heal.action"] == "restart"
    assert heal.service == "healthd" and heal.status_code != 2
    checks_spans = [s for s in otlp.spans if s.name == "healthd.check"]
    assert {s.attributes["vigil.check.kind"] for s in checks_spans} >= {"grpc"}
    failed = [s for s in checks_spans if s.attributes.get("vigil.check.status") == "NOT_SERVING"]
    assert all(s.status_code == 2 for s in failed)
    # a grpc probe's CLIENT span is a child of its check span
    by_id = {s.span_id: s for s in otlp.spans}
    probe = next(s for s in otlp.spans if s.kind == CLIENT and "Health/Check" in s.name)
    assert by_id[probe.parent_id].name == "healthd.check"
