"""A newcomer's path: clone the repo, run the README's `make run`, see every service serving.

`make test` itself is what CI runs in a fresh clone (`.ci/run`), so it is not repeated here.
"""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc

from bench import free_ports
from tests.conftest import REPO, eventually, python_env, stop_group

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_readme_opens_with_the_two_commands() -> None:
    head = "\n".join((REPO / "README.md").read_text().splitlines()[:10])
    assert re.search(r"^make run\b", head, re.M) and re.search(r"^make test\b", head, re.M)


@pytest.mark.timeout(300)
async def test_make_run_in_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "vigil"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    ports = {name: free_port() for name in ("HEALTHD", "WORKFLOW", "SECURITY")}
    env = python_env(**{f"VIGIL_{n}_SERVER__PORT": str(p) for n, p in ports.items()})
    env["VIGIL_HEALTHD_HTTP__PORT"] = str(free_port())
    # The replicas' private health ports (base + replica - 1): free ones, not the defaults.
    env["VIGIL_LOCAL_WORKFLOW_HEALTH_PORT"] = str(free_ports(2))
    env["VIGIL_LOCAL_SECURITY_HEALTH_PORT"] = str(free_ports(2))
    env["VIGIL_LOCAL_WORKFLOW_METRICS_PORT"] = str(free_ports(2))  # and their /metrics ports
    env["VIGIL_LOCAL_SECURITY_METRICS_PORT"] = str(free_ports(2))
    env.pop("VIRTUAL_ENV", None)
    log_path = tmp_path / "make-run.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        ["make", "run"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:

        async def all_serving() -> bool:
            for port in ports.values():
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                    reply = await hpb_grpc.HealthStub(ch).Check(hpb.HealthCheckRequest(service=""), timeout=2)
                    assert reply.status == hpb.HealthCheckResponse.SERVING
            return True

        try:
            await eventually(all_serving, timeout=240, interval=0.5)
        except Exception as exc:
            raise AssertionError(f"stack not serving: {exc}\n{log_path.read_text()[-4000:]}") from exc
    finally:
        stop_group(proc)
        log.close()
    assert proc.returncode is not None and (clone / ".venv").is_dir(), log_path.read_text()
