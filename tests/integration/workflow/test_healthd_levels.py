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


def _tcp_check(port: int) -> dict[str, object]:
    return {
        "kind": "tcp",
        "address": f"127.0.0.1:{port}",
        "interval_s": 0.1,
        "timeout_s": 0.2,
        "failure_threshold": 1,
    }


async def test_a_replica_does_not_obey_the_level_its_own_failure_causes(
    spawn: Callable[..., Proc], start_workflow: StartWorkflow, security: SecurityEnv, tmp_path: Path
) -> None:
    """healthd says OFFLINE because the workflow component is down (its check has not yet seen
    the restarted replica): that replica, which is up and answering, still accepts runs; a
    process of another component obeys OFFLINE; any other component's failure still counts."""
    own_port, dep_port = free_port(), free_port()  # the workflow check's port stays down
    cfg = tmp_path / "healthd.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "server": {"port": 0},
                "http": {"port": 0},
                "mode": "sidecar",
                "components": [
                    {
                        "name": "vigil.workflow.v1.WorkflowService",
                        "degrades_to": "OFFLINE",
                        "checks": [_tcp_check(own_port)],
                    },
                    {"name": "dependency", "degrades_to": "READ_ONLY", "checks": [_tcp_check(dep_port)]},
                ],
            }
        )
    )
    listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", dep_port)
    healthd = spawn("-m", "healthd", "--config", str(cfg))
    address = f"127.0.0.1:{healthd.wait_for_port()}"
    own = await start_workflow(security.address, healthd_address=address)
    other = await start_workflow(security.address, healthd_address=address, healthd_component="someone-else")
    try:
        await eventually(lambda: other.gate.level is Level.OFFLINE, timeout=10)
        assert own.gate.level is Level.NORMAL
        async with client(own, security.alice) as c:
            run, _ = await c.start_run("echo", {"up": True}, wait=True)
            assert run.state == pb.RUN_STATE_SUCCEEDED and not run.degradation_applied
        async with client(other, security.alice) as c:
            with pytest.raises(Unavailable, match="OFFLINE"):
                await c.start_run("echo", {})
        listener.close()  # now another component is down too: that failure gates everyone
        await eventually(lambda: own.gate.level is Level.READ_ONLY, timeout=10)
        async with client(own, security.alice) as c:
            with pytest.raises(Unavailable, match="READ_ONLY"):
                await c.start_run("echo", {})
    finally:
        listener.close()
