"""The workflow service obeys the degradation level the real healthd publishes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from services.common import Unavailable
from services.workflow._degradation import Level
from services.workflow.client import pb
from tests.conftest import Proc, eventually
from tests.integration.workflow.conftest import SecurityEnv, StartWorkflow, client, free_port

pytestmark = pytest.mark.e2e  # starts a real healthd process


async def test_read_only_from_healthd_refuses_runs_until_it_recovers(
    spawn: Callable[..., Proc], start_workflow: StartWorkflow, security: SecurityEnv, tmp_path: Path
) -> None:
    dep_port = free_port()  # the component healthd watches: down until we listen on it
    cfg = tmp_path / "healthd.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "server": {"port": 0},
                "http": {"port": 0},
                "mode": "sidecar",
                "level_recovery_s": 0.2,
                "components": [
                    {
                        "name": "dependency",
                        # Non-critical: with every critical component down healthd says OFFLINE.
                        "critical": False,
                        "degrades_to": "READ_ONLY",
                        "checks": [
                            {
                                "kind": "tcp",
                                "address": f"127.0.0.1:{dep_port}",
                                "interval_s": 0.1,
                                "timeout_s": 0.2,
                                "failure_threshold": 1,
                            }
                        ],
                    }
                ],
            }
        )
    )
    healthd = spawn("-m", "healthd", "--config", str(cfg))
    app = await start_workflow(security.address, healthd_address=f"127.0.0.1:{healthd.wait_for_port()}")
    async with client(app, security.alice) as c:
        await eventually(lambda: app.gate.level is Level.READ_ONLY, timeout=10)
        with pytest.raises(Unavailable, match="READ_ONLY"):
            await c.start_run("echo", {})
        listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", dep_port)
        try:
            await eventually(lambda: app.gate.level is Level.NORMAL, timeout=10)
            run, _ = await c.start_run("echo", {"back": True}, wait=True)
            assert run.state == pb.RUN_STATE_SUCCEEDED and not run.degradation_applied
        finally:
            listener.close()
