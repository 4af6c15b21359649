"""One fault pages once, against a real healthd and a real webhook receiver: when the
dependency at the bottom of a ``depends_on`` chain goes down, the receiver gets a single
firing notice keyed by the root cause's alert, holding the alerts it caused; when it comes
back, a single resolve. A dependent failing on its own still pages by itself."""

from __future__ import annotations

from typing import Any

from grpc_health.v1 import health_pb2 as hpb

from healthd._daemon import Daemon
from services.common import ServerConfig, VigilServer
from tests.conftest import eventually
from tests.healthd_util import config
from tests.integration.healthd.conftest import free_port
from tests.integration.obs.conftest import Receiver

ROOT, APP, WEB = "drill.v1.Store", "drill.v1.App", "drill.v1.Web"


async def _target(name: str, port: int) -> VigilServer:
    srv = VigilServer(ServerConfig(port=port, grace_period_s=0), "target")
    await srv.health.set(name, hpb.HealthCheckResponse.SERVING)
    await srv.start()
    return srv


def _component(name: str, port: int, depends_on: list[str]) -> dict[str, Any]:
    check = {"kind": "grpc", "address": f"127.0.0.1:{port}", "service": name, "interval_s": 0.1,
             "timeout_s": 0.3, "failure_threshold": 1}  # fmt: skip
    return {"name": name, "depends_on": depends_on, "checks": [check]}


async def test_a_dependency_failure_pages_once_with_the_alerts_it_caused(receiver: Receiver) -> None:
    ports = {n: free_port() for n in (ROOT, APP, WEB)}
    servers = {n: await _target(n, p) for n, p in ports.items()}
    cfg = config(
        server={"port": 0},
        http={"port": 0},
        mode="sidecar",
        components=[
            _component(ROOT, ports[ROOT], []),
            _component(APP, ports[APP], [ROOT]),
            _component(WEB, ports[WEB], [APP]),
        ],
        alerts={
            "evaluate_interval_s": 0.05,
            "inhibit_grace_s": 1.0,
            "rules": [{"name": "ComponentDown", "kind": "component_down", "for_s": 0.3}],
            "webhooks": [{"url": receiver.url, "backoff_s": 0.05, "max_backoff_s": 0.1}],
        },
    )
    daemon = Daemon(cfg, sink=lambda _line: None)
    await daemon.start()
    try:
        snap = daemon.engine.snapshot
        await eventually(lambda: all(v.health.status.value == "SERVING" for v in snap().components), 10)
        await servers[ROOT].stop(0)
        await eventually(lambda: len(receiver.bodies) >= 1, timeout=10)
        # more evaluations than it takes every alert to fire: still one page
        await eventually(lambda: all(a.state.value == "firing" for a in daemon.alerting.alerts()), 5)
        assert len(daemon.alerting.alerts()) == 3
        (page,) = receiver.bodies
        assert page["status"] == "firing"
        assert page["groupLabels"] == {"alertname": "ComponentDown", "component": ROOT}
        assert next(a["labels"]["component"] for a in page["alerts"]) == ROOT
        assert {a["labels"]["component"] for a in page["alerts"]} == {ROOT, APP, WEB}
        assert {a["annotations"].get("caused_by") for a in page["alerts"][1:]} == {ROOT}
        shown = {a["labels"]["component"]: a["caused_by"] for a in daemon.dashboard.model.state()["alerts"]}
        assert shown == {ROOT: "", APP: ROOT, WEB: ROOT}

        servers[ROOT] = await _target(ROOT, ports[ROOT])
        await eventually(lambda: receiver.bodies[-1]["status"] == "resolved", timeout=10)
        await eventually(lambda: all(a.state.value == "resolved" for a in daemon.alerting.alerts()), 5)
        assert [b["status"] for b in receiver.bodies] == ["firing", "resolved"]
        assert receiver.bodies[-1]["groupLabels"]["component"] == ROOT

        # a dependent failing by itself is its own page
        await servers[WEB].stop(0)
        await eventually(lambda: len(receiver.bodies) == 3, timeout=10)
        alone = receiver.bodies[-1]
        assert alone["status"] == "firing" and alone["groupLabels"]["component"] == WEB
        assert len(alone["alerts"]) == 1
    finally:
        await daemon.stop()
        for srv in servers.values():
            await srv.stop(0)
