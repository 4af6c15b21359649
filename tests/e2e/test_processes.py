"""The three entry points as real processes: start-up, config errors, graceful shutdown."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.conftest import eventually, python_env
from vigil.workflow.v1 import workflow_pb2 as wpb
from vigil.workflow.v1 import workflow_pb2_grpc

pytestmark = pytest.mark.e2e

SERVICES = [
    ("services.workflow", "WORKFLOW", "vigil.workflow.v1.WorkflowService"),
    ("services.security", "SECURITY", "vigil.security.v1.SecurityService"),
    ("healthd", "HEALTHD", "vigil.healthd.v1.HealthDaemon"),
]


@pytest.mark.parametrize(("module", "prefix", "service"), SERVICES)
async def test_entry_point_serves_health_and_reflection(
    spawn, tmp_path: Path, module, prefix, service
) -> None:
    env = python_env(**{f"VIGIL_{prefix}_SERVER__PORT": "0"})
    proc = spawn("-m", module, env=env)
    port = proc.wait_for_port()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = hpb_grpc.HealthStub(channel)
        assert (
            await health.Check(hpb.HealthCheckRequest(service=service), timeout=5)
        ).status == hpb.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name async for r in call for s in r.list_services_response.service}
    assert service in names
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(15) == 0


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("server:\n  port: 70000\n", "server.port"),
        ("server:\n  bogus: 1\n", "server.bogus"),
        ("server: 5\n", "server"),
    ],
)
def test_bad_config_exits_2_naming_file_and_field(spawn, tmp_path: Path, content: str, field: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(content)
    proc = spawn("-m", "services.workflow", "--config", str(cfg))
    _, err = proc.popen.communicate(timeout=30)
    assert proc.popen.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(cfg) in lines[0] and field in lines[0], err


async def test_sigterm_mid_request_drains_then_exits_0(spawn) -> None:
    env = python_env(VIGIL_SLOW_SERVER__PORT="0", VIGIL_SLOW_SERVER__GRACE_PERIOD_S="10")
    proc = spawn(str(Path(__file__).with_name("slow_server.py")), env=env)
    port = proc.wait_for_port()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = workflow_pb2_grpc.WorkflowServiceStub(channel)
        health = hpb_grpc.HealthStub(channel)
        watch = health.Watch(hpb.HealthCheckRequest(service=""))
        assert (await watch.read()).status == hpb.HealthCheckResponse.SERVING
        in_flight = asyncio.ensure_future(stub.GetRun(wpb.GetRunRequest(run_id="1.5"), timeout=20))
        await asyncio.sleep(0.3)  # let the slow call reach the server before the signal
        proc.popen.send_signal(signal.SIGTERM)
        # Health turns NOT_SERVING first ...
        assert (await asyncio.wait_for(watch.read(), 5)).status == hpb.HealthCheckResponse.NOT_SERVING

        # ... then new calls are refused while the in-flight one is still running ...
        async def refused() -> bool:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as fresh:
                try:
                    await workflow_pb2_grpc.WorkflowServiceStub(fresh).GetRun(
                        wpb.GetRunRequest(run_id="0"), timeout=1
                    )
                except grpc.aio.AioRpcError as exc:
                    return exc.code() == grpc.StatusCode.UNAVAILABLE
            return False

        await eventually(refused, timeout=5)
        assert not in_flight.done()
        # ... and the in-flight call completes normally.
        assert (await in_flight).run.run_id == "1.5"
    assert await asyncio.to_thread(proc.popen.wait, 15) == 0


def _gone(pid: int) -> bool:
    """True when ``pid`` has exited (a zombie awaiting a reaper counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state


async def test_child_shuts_down_when_its_supervisor_is_killed(spawn, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = Path(__file__).with_name("slow_server.py")
    parent_code = (
        "import os, subprocess, sys\n"
        f"env = dict(os.environ, VIGIL_SUPERVISOR_PID=str(os.getpid()), VIGIL_SLOW_SERVER__PORT='{port}')\n"
        f"child = subprocess.Popen([sys.executable, {str(server)!r}], env=env, start_new_session=True,\n"
        "                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(child.pid, flush=True)\n"
        "child.wait()\n"
    )
    parent = spawn("-c", parent_code)
    assert parent.popen.stdout is not None
    child_pid = int(parent.popen.stdout.readline())

    async def serving() -> bool:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            reply = await hpb_grpc.HealthStub(ch).Check(hpb.HealthCheckRequest(service=""), timeout=1)
            return reply.status == hpb.HealthCheckResponse.SERVING

    await eventually(serving, timeout=20)
    parent.popen.send_signal(signal.SIGKILL)
    await eventually(lambda: _gone(child_pid), timeout=10)
