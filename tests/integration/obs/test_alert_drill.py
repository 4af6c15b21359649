"""Alert drill against a real healthd: a checked gRPC server goes down, stays down, comes
back; a real webhook receiver gets firing, escalation and resolved notices (after a 503
it must retry), and the dashboard's JSON export shows the alert."""

from __future__ import annotations

from typing import Any

import aiohttp
from grpc_health.v1 import health_pb2 as hpb

from healthd._daemon import Daemon
from services.common import ServerConfig, VigilServer
from tests.conftest import eventually
from tests.healthd_util import config
from tests.integration.healthd.conftest import free_port
from tests.integration.obs.conftest import Receiver

NAME = "drill.v1.Target"


async def _target(port: int) -> VigilServer:
    srv = VigilServer(ServerConfig(port=port, grace_period_s=0), "target")
    await srv.health.set(NAME, hpb.HealthCheckResponse.SERVING)
    await srv.start()
    return srv


async def test_down_escalate_resolve_drill(receiver: Receiver) -> None:
    port = free_port()
    target = await _target(port)
    cfg = config(
        server={"port": 0},
        http={"port": 0},
        mode="sidecar",
        components=[
            {
                "name": NAME,
                "checks": [
                    {
                        "kind": "grpc",
                        "address": f"127.0.0.1:{port}",
                        "service": NAME,
                        "interval_s": 0.1,
                        "timeout_s": 0.3,
                        "failure_threshold": 1,
                        "success_threshold": 1,
                    }
                ],
            }
        ],
        alerts={
            "evaluate_interval_s": 0.05,
            "rules": [
                {
                    "name": "ComponentDown",
                    "kind": "component_down",
                    "severity": "warning",
                    "for_s": 0.3,
                    "repeat_interval_s": 1.0,
                }
            ],
            "webhooks": [{"url": receiver.url, "backoff_s": 0.05, "max_backoff_s": 0.1}],
        },
    )
    daemon = Daemon(cfg, sink=lambda _line: None)
    await daemon.start()
    try:
        api = f"http://127.0.0.1:{daemon.dashboard.port}/api/health"

        async def export() -> dict[str, Any]:
            async with aiohttp.ClientSession() as session, session.get(api) as resp:
                return dict(await resp.json())

        await eventually(lambda: daemon.engine.snapshot().components[0].health.status.value == "SERVING")
        await target.stop(0)
        await eventually(lambda: receiver.notices()[:1] == [("firing", "firing", "warning")], timeout=10)
        await eventually(lambda: ("firing", "escalated", "critical") in receiver.notices(), timeout=10)

        async def firing() -> list[dict[str, Any]]:
            return [a for a in (await export())["alerts"] if a["state"] == "firing"]

        shown = await eventually(firing)
        assert shown[0]["rule"] == "ComponentDown" and shown[0]["labels"] == {"component": NAME}
        assert shown[0]["escalations"] >= 1 and shown[0]["severity"] == "critical"

        target = await _target(port)
        await eventually(lambda: receiver.notices()[-1][:2] == ("resolved", "resolved"), timeout=10)
        kinds = [n[1] for n in receiver.notices()]
        # one firing, escalations only once per repeat interval (de-duplicated), one resolve
        assert kinds[0] == "firing" and kinds.count("firing") == 1 and kinds.count("resolved") == 1
        assert receiver.attempts == len(receiver.bodies) + 1  # the 503 was retried
        body = receiver.bodies[-1]
        assert body["version"] == "4" and body["receiver"] == "vigil"
        assert body["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
        assert body["externalURL"] == daemon.dashboard.url
        assert (await export())["alerts"][0]["state"] == "resolved"
    finally:
        await daemon.stop()
        await target.stop(0)
