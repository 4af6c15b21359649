"""Availability drills (issue 12, supervisor side): replicas, a supervisor that can die, fail-fast
start-up errors and quick shutdown. Real processes, bounded load on 127.0.0.1; the figures a
caller sees are in the drill table (failed, retried, gap, refusals while ready, dup runs).

Until run leases land on SQLite (issue 14), two workflow replicas on one store may both resume
the same interrupted run at start-up: step re-runs are reported in the table, never counted
here as a failure of the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc

from bench import SECURITY, WORKFLOW, ServerProcess, free_port, python_env
from tests.chaos.conftest import full
from tests.chaos.drill import Drill
from tests.conftest import eventually
from vigil.healthd.v1 import healthd_pb2 as dpb

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]
if sys.platform != "linux":  # /proc, pidfd
    pytestmark.append(pytest.mark.skip(reason="Linux only"))

REPO = Path(__file__).resolve().parents[2]


def assert_no_failed_calls(drill: Drill) -> None:
    r = drill.report
    assert r.lost == 0, r
    assert r.accepted > 0, r
    assert r.duplicated_runs == 0, r
    assert not r.failed, r


async def _kill_one_replica(drill: Drill, name: str, service: str) -> None:
    drill.watch(service)
    drill.watch_readiness()
    drill.start_load()
    await asyncio.sleep(1.5)
    pids = await drill.stack.replica_pids(name)
    assert len(pids) == 2, pids
    drill.mark_fault()
    os.kill(pids[0], signal.SIGKILL)

    async def replaced() -> bool:
        now = await drill.stack.replica_pids(name)
        return len(now) == 2 and pids[0] not in now

    await eventually(replaced, timeout=30, interval=0.1)
    await asyncio.sleep(1.0)  # load continues on both replicas again
    await drill.finish()


async def test_kill_9_one_workflow_replica(drill_stack) -> None:
    drill = await drill_stack("kill -9 1 of 2 workflow", replicas=2, retry_unavailable=True)
    await _kill_one_replica(drill, "workflow", WORKFLOW)
    assert_no_failed_calls(drill)
    drill.report.note = "client retries UNAVAILABLE with the same idempotency key"


@full
async def test_kill_9_one_security_replica(drill_stack) -> None:
    drill = await drill_stack("kill -9 1 of 2 security", replicas=2)
    await _kill_one_replica(drill, "security", SECURITY)
    assert_no_failed_calls(drill)
    drill.report.note = "no client retries: the workflow's pooled security client absorbs it"


@full
async def test_sigstop_one_workflow_replica(drill_stack) -> None:
    """A hung replica (SIGSTOP) is seen only when its health check times out; healthd then
    replaces it. Figures only: calls already on its connection wait out their deadline (the
    client retries UNAVAILABLE, not DEADLINE_EXCEEDED), so this drill reports, not asserts, them."""
    drill = await drill_stack("SIGSTOP 1 of 2 workflow", replicas=2, retry_unavailable=True)
    drill.watch_readiness()
    drill.start_load()
    await asyncio.sleep(1.5)
    pids = await drill.stack.replica_pids("workflow")
    drill.mark_fault()
    os.kill(pids[0], signal.SIGSTOP)

    async def replaced() -> bool:
        now = await drill.stack.replica_pids("workflow")
        return len(now) == 2 and pids[0] not in now

    try:
        await eventually(replaced, timeout=20, interval=0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pids[0], signal.SIGCONT)
    await asyncio.sleep(1.0)
    await drill.finish()
    r = drill.report
    assert r.lost == 0 and r.duplicated_runs == 0, r
    r.note = "healthd replaced the stopped replica; failures are calls that waited on it"


def _service_processes(root: Path) -> list[int]:
    """Pids of every service process started with a config under ``root`` (duplicates show)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        service = b"services.workflow" in argv or b"services.security" in argv
        if service and any(arg.startswith(str(root).encode()) for arg in argv):
            out.append(int(entry.name))
    return out


def _children(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


async def _healthd_serving(address: str) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await hpb_grpc.HealthStub(channel).Check(hpb.HealthCheckRequest(service=""), timeout=1)
        except grpc.aio.AioRpcError:
            return False
    return reply.status == hpb.HealthCheckResponse.SERVING


async def test_kill_9_healthd_under_load(drill_stack) -> None:
    drill = await drill_stack("kill -9 healthd (keep)", replicas=2, keep=True, retry_unavailable=True)
    stack = drill.stack
    drill.watch_readiness()
    before = sorted(_service_processes(stack.root))
    assert len(before) == 4, before
    drill.start_load()
    await asyncio.sleep(1.5)
    keeper = stack.procs["healthd"].pid
    healthd = int(_children(keeper)[0])
    drill.mark_fault()
    os.kill(healthd, signal.SIGKILL)
    t0 = time.monotonic()
    await eventually(lambda: _healthd_serving(stack.address("healthd")), timeout=30, interval=0.1)
    back_s = time.monotonic() - t0

    async def healthy() -> bool:
        return (await stack.system_health()).status == dpb.SYSTEM_STATUS_HEALTHY

    await eventually(healthy, timeout=30, interval=0.2)
    await asyncio.sleep(1.0)
    after = sorted(_service_processes(stack.root))
    await drill.finish()
    assert_no_failed_calls(drill)
    assert after == before, f"service processes changed: {before} -> {after}"
    assert back_s <= 10, back_s
    drill.report.heal_s = back_s
    drill.report.note = (
        f"healthd SERVING again {back_s:.2f} s after kill -9 (restarted by `healthd keep`); "
        f"the 4 service processes were adopted, none started twice"
    )


def _security_server(tmp_path: Path) -> tuple[ServerProcess, str]:
    cfg = tmp_path / "security.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "server": {"port": 0, "grace_period_s": 10},
                "audit": {"db_path": str(tmp_path / "audit.db")},
                "roots": {"default": str(tmp_path)},
            }
        )
    )
    return ServerProcess(["-m", "services.security", "--config", str(cfg)], name="security"), SECURITY


def _healthd_server(tmp_path: Path) -> tuple[ServerProcess, str]:
    cfg = tmp_path / "healthd.yaml"
    check = {"kind": "tcp", "address": f"127.0.0.1:{free_port()}", "interval_s": 0.5}
    config = {
        "server": {"port": 0, "grace_period_s": 10},
        "http": {"port": 0},
        "mode": "sidecar",
        "components": [{"name": "thing", "checks": [check]}],
    }
    cfg.write_text(yaml.safe_dump(config))
    return ServerProcess(["-m", "healthd", "--config", str(cfg)], name="healthd"), ""


@pytest.mark.parametrize("make", [_security_server, _healthd_server], ids=["security", "healthd"])
async def test_shutdown_with_100_watch_streams(tmp_path: Path, make: Any) -> None:
    """SIGTERM with 100 open grpc.health.v1 Watch streams: every one is told NOT_SERVING and
    ends, the process exits at once (not after its 10 s grace), with no traceback."""
    proc, service = make(tmp_path)
    await asyncio.to_thread(proc.start, 30)
    try:
        async with grpc.aio.insecure_channel(proc.address) as channel:
            stub = hpb_grpc.HealthStub(channel)
            calls = [stub.Watch(hpb.HealthCheckRequest(service=service)) for _ in range(100)]
            for call in calls:
                assert (await call.read()) is not grpc.aio.EOF
            t0 = time.monotonic()
            proc.signal(signal.SIGTERM)
            ends = await asyncio.gather(*(_last_status(c) for c in calls))
            code = await asyncio.to_thread(proc.popen.wait, 10)  # type: ignore[union-attr]
            took = time.monotonic() - t0
    finally:
        proc.kill()
    assert code == 0
    assert all(s == hpb.HealthCheckResponse.NOT_SERVING for s in ends), ends
    assert took <= 2.0, took
    assert not any("Traceback" in line or "CancelledError" in line for line in proc.tail)


async def _last_status(call: grpc.aio.UnaryStreamCall) -> int:
    last = -1
    try:
        while (reply := await call.read()) is not grpc.aio.EOF:
            last = reply.status
    except grpc.aio.AioRpcError:
        pass
    return last


async def test_bad_env_value_goes_fatal_at_once(tmp_path: Path) -> None:
    """A child that can never start (a bad config value in its env) is FATAL after its first
    exit, not five restarts later, and `healthd status` shows why (its stderr tail)."""
    port = free_port()
    cfg = tmp_path / "security.yaml"
    cfg.write_text(yaml.safe_dump({"server": {"port": 0}, "audit": {"db_path": str(tmp_path / "a.db")}}))
    config = {
        "server": {"port": port, "grace_period_s": 1},
        "http": {"port": 0},
        "mode": "supervisor",
        "components": [
            {
                "name": SECURITY,
                "process": {
                    "argv": ["{python}", "-m", "services.security", "--config", str(cfg)],
                    "env": {"VIGIL_SECURITY_SERVER__GRACE_PERIOD_S": "soon"},
                },
                "checks": [{"kind": "process", "interval_s": 0.2, "failure_threshold": 1}],
                "healing": {"action": "restart", "backoff_base_s": 0.2, "max_attempts": 5},
            }
        ],
    }
    path = tmp_path / "healthd.yaml"
    path.write_text(yaml.safe_dump(config))
    healthd = ServerProcess(["-m", "healthd", "--config", str(path)], name="healthd")
    await asyncio.to_thread(healthd.start, 30)
    try:
        t0 = time.monotonic()

        def status() -> str:
            out = subprocess.run(
                [sys.executable, "-m", "healthd", "status", "--addr", f"127.0.0.1:{port}"],
                capture_output=True,
                text=True,
                cwd=REPO,
                env=python_env(),
                timeout=20,
            )
            return out.stdout

        async def fatal() -> bool:
            return "FATAL" in await asyncio.to_thread(status)

        try:
            await eventually(fatal, timeout=20, interval=0.2)
        except AssertionError:
            raise AssertionError(f"{await asyncio.to_thread(status)}\n{''.join(healthd.tail)}") from None
        took = time.monotonic() - t0
        table = await asyncio.to_thread(status)
    finally:
        healthd.stop(10)
    assert "grace_period_s" in table and "soon" in table, table  # the child's own error line
    assert " 0  " in table.splitlines()[3], table  # no restart was tried
    assert took < 10, took
