"""A supervisor that can die: healthd killed -9 leaves its children serving, and the next
healthd adopts them (no duplicates, no port conflict), still notices their death, and stops
them on its own graceful exit. Real healthd processes over real children."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
from pathlib import Path

import grpc
import yaml

from bench import free_ports
from tests.conftest import python_env
from tests.healthd_util import assert_no_pid, eventually, pid_alive
from tests.integration.healthd.conftest import REPO, free_port
from tests.integration.healthd.test_replicas import NAME, replicated
from vigil.healthd.v1 import healthd_pb2 as _pb
from vigil.healthd.v1 import healthd_pb2_grpc as _pb_grpc


async def _start(path: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "healthd",
        "--config",
        str(path),
        cwd=REPO,
        env=python_env(),
        stderr=asyncio.subprocess.DEVNULL,
    )


async def _pids(address: str) -> list[int]:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            health = (
                await _pb_grpc.HealthDaemonStub(channel).GetSystemHealth(
                    _pb.GetSystemHealthRequest(), timeout=2
                )
            ).health
        except grpc.aio.AioRpcError:
            return []
    comp = next(c for c in health.components if c.name == NAME)
    if comp.replicas_serving != 2:
        return []
    return [r.pid for r in comp.replicas]


async def test_killed_healthd_children_are_adopted_by_the_next(tmp_path: Path) -> None:
    port = free_port()
    run_dir = tmp_path / "run"
    config = {
        "server": {"port": port, "grace_period_s": 1},
        "http": {"port": 0},
        "run_dir": str(run_dir),
        "log_dir": str(tmp_path / "logs"),
        "components": [replicated(free_port(), free_ports(2))],
    }
    path = tmp_path / "healthd.yaml"
    path.write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{port}"
    first = await _start(path)
    second = None
    pids: list[int] = []
    try:
        pids = await eventually(lambda: _pids(address), 30, 0.1)
        assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in run_dir.glob("*.json"))
        first.kill()
        await first.wait()
        await asyncio.sleep(0.5)
        assert all(pid_alive(p) for p in pids), "children outlive a killed healthd"

        second = await _start(path)
        adopted = await eventually(lambda: _pids(address), 30, 0.1)
        assert adopted == pids, "adopted, not started again"
        # An adopted child is not our child, but its death is still an event.
        os.kill(pids[0], signal.SIGKILL)

        async def replaced() -> list[int]:
            now = await _pids(address)
            return now if now and now[0] != pids[0] else []

        now = await eventually(replaced, 20, 0.1)
        assert now[1] == pids[1]
        pids = now
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 20) == 0
        assert_no_pid(pids)
        assert not list(run_dir.glob("*.json")), "a graceful stop leaves no records"
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
        for pid in pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


async def test_a_child_started_with_another_config_is_replaced_not_adopted(tmp_path: Path) -> None:
    port = free_port()
    component = replicated(free_port(), free_ports(2))
    config = {
        "server": {"port": port, "grace_period_s": 1},
        "http": {"port": 0},
        "run_dir": str(tmp_path / "run"),
        "components": [component],
    }
    path = tmp_path / "healthd.yaml"
    path.write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{port}"
    procs: list[asyncio.subprocess.Process] = []
    old: list[int] = []
    new: list[int] = []
    try:
        procs.append(await _start(path))
        old = await eventually(lambda: _pids(address), 30, 0.1)
        procs[0].kill()
        await procs[0].wait()
        component["process"]["env"]["EXTRA"] = "changed"  # type: ignore[index]
        path.write_text(yaml.safe_dump(config))
        procs.append(await _start(path))
        new = await eventually(lambda: _pids(address), 30, 0.1)
        assert not set(new) & set(old)
        assert_no_pid(old)  # stopped first: never two generations at once
        procs[1].send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(procs[1].wait(), 20) == 0
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        for pid in old + new:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
