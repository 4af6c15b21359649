"""healthd as a real process in supervisor mode: children, prefixed logs, healing, clean stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc

from services.common import load_config
from tests.conftest import eventually, python_env
from tests.healthd_util import assert_no_pid, pid_alive
from vigil.healthd.v1 import healthd_pb2 as pb
from vigil.healthd.v1 import healthd_pb2_grpc as pb_grpc

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CHILD = REPO / "tests" / "integration" / "healthd" / "child_server.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _component(name: str, port: int) -> dict[str, object]:
    return {
        "name": name,
        "process": {"argv": ["{python}", str(CHILD), str(port), name], "cwd": str(REPO), "grace_s": 3},
        "checks": [
            {
                "kind": "grpc",
                "address": f"127.0.0.1:{port}",
                "service": name,
                "interval_s": 0.5,
                "timeout_s": 0.5,
            },
            {"kind": "process", "interval_s": 0.5, "failure_threshold": 1},
        ],
        "healing": {"action": "restart", "backoff_base_s": 0.2, "start_timeout_s": 15},
    }


def test_local_config_names_services_by_grpc_name() -> None:
    from healthd import HealthdConfig

    cfg = load_config(HealthdConfig, REPO / "deploy" / "local" / "healthd.yaml")
    names = {c.name for c in cfg.components}
    assert {"vigil.workflow.v1.WorkflowService", "vigil.security.v1.SecurityService"} <= names
    assert cfg.server.port == 50050 and cfg.mode == "supervisor"
    kinds = {c.name: sorted(k.kind for k in c.checks) for c in cfg.components}
    assert kinds["vigil.workflow.v1.WorkflowService"] == ["grpc", "process"]
    assert any(k == ["store"] for k in kinds.values())


async def test_supervisor_mode_end_to_end(tmp_path: Path) -> None:
    names = ["vigil.a.v1.AService", "vigil.b.v1.BService"]
    config = {
        "server": {"port": _free_port()},
        "mode": "supervisor",
        "components": [_component(n, _free_port()) for n in names],
    }
    path = tmp_path / "healthd.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "healthd",
        "--config",
        str(path),
        cwd=REPO,
        env=python_env(),
        stderr=asyncio.subprocess.PIPE,
    )
    lines: list[str] = []

    async def pump() -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            lines.append(raw.decode(errors="replace"))

    pumping = asyncio.ensure_future(pump())
    addr = f"127.0.0.1:{config['server']['port']}"  # type: ignore[index]
    pids: list[int] = []
    try:
        async with grpc.aio.insecure_channel(addr) as channel:
            health = hpb_grpc.HealthStub(channel)
            daemon = pb_grpc.HealthDaemonStub(channel)

            async def system() -> pb.SystemHealth:
                return (await daemon.GetSystemHealth(pb.GetSystemHealthRequest(), timeout=2)).health

            async def healthy() -> bool:
                try:
                    return (await system()).status == pb.SYSTEM_STATUS_HEALTHY
                except grpc.aio.AioRpcError:
                    return False

            await eventually(healthy, 30)
            pids = [c.pid for c in (await system()).components]
            assert all(p > 0 and pid_alive(p) for p in pids)
            # Child output is forwarded with the component name as prefix.
            assert any(line.startswith(f"[{names[0]}] child serving") for line in lines)
            # A live status summary line is printed.
            assert any("status: HEALTHY" in json.loads(x).get("msg", "") for x in lines if x.startswith("{"))
            # kill -9 one child: Watch sees NOT_SERVING promptly, then SERVING after the restart.
            watch = health.Watch(hpb.HealthCheckRequest(service=names[0]))
            assert (await watch.read()).status == hpb.HealthCheckResponse.SERVING
            os.kill(pids[0], signal.SIGKILL)
            assert (await asyncio.wait_for(watch.read(), 1.0)).status == hpb.HealthCheckResponse.NOT_SERVING
            assert (await asyncio.wait_for(watch.read(), 20)).status == hpb.HealthCheckResponse.SERVING
            watch.cancel()
            pids = [c.pid for c in (await system()).components]
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        assert_no_pid(pids)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await pumping
    assert any("children first" in x for x in lines)


def test_port_in_use_exits_1_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        env = python_env(VIGIL_HEALTHD_SERVER__PORT=str(busy.getsockname()[1]))
        result = subprocess.run(
            [sys.executable, "-m", "healthd"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert "cannot start" in result.stderr and "Traceback" not in result.stderr


def test_bad_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "healthd.yaml"
    bad.write_text("components:\n  - name: a\n    checks: [{kind: tcp, address: 'x:1', interval_s: 0}]\n")
    result = subprocess.run(
        [sys.executable, "-m", "healthd", "--config", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "interval_s" in lines[0] and str(bad) in lines[0]
