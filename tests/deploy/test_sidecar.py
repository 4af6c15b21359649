"""The workflow pod's healthd sidecar config, run for real: healthd answers the kubelet's
probes (`readiness`, `liveness`, its own service), sees the service die, tries the heal
command, escalates through `liveness` when healing fails, and recovers when the kubelet's
restart brings the service back."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2 as _hpb
from grpc_health.v1 import health_pb2_grpc as _hpb_grpc

from services.common import ServerConfig, TLSConfig, VigilServer
from services.security._audit_keys import key_file_text
from services.security._devcerts import ensure_dev_certs
from tests.conftest import Proc, eventually, python_env
from tests.deploy._load import find
from tests.postgres import postgres_dsn, postgres_server
from vigil.workflow.v1 import workflow_pb2_grpc as _wpb_grpc

pytestmark = pytest.mark.e2e
__all__ = ["postgres_dsn", "postgres_server"]  # fixtures

SERVICE = "vigil.workflow.v1.WorkflowService"
SERVING, NOT_SERVING = _hpb.HealthCheckResponse.SERVING, _hpb.HealthCheckResponse.NOT_SERVING


async def _service(port: int, tls: TLSConfig) -> VigilServer:
    """A stand-in for the workflow container: a real mTLS server with its grpc.health.v1 status."""
    server = VigilServer(ServerConfig(port=port, grace_period_s=0, tls=tls), "workflow-stand-in")
    server.add_servicer(
        _wpb_grpc.add_WorkflowServiceServicer_to_server, _wpb_grpc.WorkflowServiceServicer(), SERVICE
    )
    await server.start()
    return server


@pytest.fixture
async def health() -> AsyncIterator[Callable[[int], _hpb_grpc.HealthStub]]:
    channels: list[grpc.aio.Channel] = []

    def stub(port: int) -> _hpb_grpc.HealthStub:
        channels.append(grpc.aio.insecure_channel(f"127.0.0.1:{port}"))
        return _hpb_grpc.HealthStub(channels[-1])

    yield stub
    for channel in channels:
        await channel.close()


async def test_sidecar_config_probes_heal_and_escalation(
    spawn: Callable[..., Proc],
    tmp_path: Path,
    health: Callable[[int], _hpb_grpc.HealthStub],
    postgres_dsn: str,
) -> None:
    # The pod's certificates (the vigil-tls-workflow Secret), issued here by the dev CA.
    pki = tmp_path / "pki"
    ensure_dev_certs(pki, ["workflow"])
    tls = TLSConfig(
        cert_file=pki / "workflow.pem", key_file=pki / "workflow-key.pem", client_ca_file=pki / "ca.pem"
    )
    service = await _service(0, tls)
    port = service.port
    assert port is not None
    data = find("ConfigMap", "workflow-config")["data"]
    heal = tmp_path / "heal_sigterm.py"
    heal.write_text(data["heal_sigterm.py"])
    # The pod's file, with what differs here: the service's port, the script's path, and the
    # module it signals (this machine's other processes are not the pod's: signal none of them).
    text = data["healthd.yaml"].replace("127.0.0.1:50051", f"127.0.0.1:{port}")
    secret = "/var/run/secrets/vigil/tls"
    for key, file in (("tls.crt", "workflow.pem"), ("tls.key", "workflow-key.pem"), ("ca.crt", "ca.pem")):
        text = text.replace(f"{secret}/{key}", str(pki / file))
    assert secret not in text
    # Its audit chain goes to the deployment's PostgreSQL with the key from a Secret: here a
    # real throw-away PostgreSQL and a key file of the test.
    (tmp_path / "pg-password").write_text("unused (trust authentication)\n")
    (tmp_path / "audit-key").write_text(key_file_text({"k1": b"k" * 32}, "k1"))
    for pod_path, here in (
        ("host=postgres port=5432 dbname=vigil user=vigil connect_timeout=5", postgres_dsn),
        ("/var/run/secrets/vigil/postgres/password", str(tmp_path / "pg-password")),
        ("/var/run/secrets/vigil/audit/audit-key", str(tmp_path / "audit-key")),
    ):
        assert pod_path in text
        text = text.replace(pod_path, here)
    text = text.replace("/etc/vigil/heal_sigterm.py", str(heal)).replace("[python,", f"[{sys.executable},")
    assert text.count(", services.workflow]") == 1
    text = text.replace(", services.workflow]", f", absent_{uuid.uuid4().hex}]")
    (tmp_path / "healthd.yaml").write_text(text)
    env = python_env(VIGIL_HEALTHD_SERVER__PORT="0", VIGIL_HEALTHD_HTTP__PORT="0")
    healthd = spawn("-m", "healthd", "--config", str(tmp_path / "healthd.yaml"), env=env)
    probe = health(healthd.wait_for_port())

    async def status(name: str) -> int:
        return int((await probe.Check(_hpb.HealthCheckRequest(service=name), timeout=2)).status)

    async def becomes(name: str, want: int, timeout: float) -> None:
        await eventually(lambda: _equals(status(name), want), timeout=timeout, interval=0.05)

    # Start-up: the kubelet's startup/readiness probe passes once the service is checked.
    await becomes("readiness", SERVING, 15)
    assert await status("liveness") == SERVING
    assert await status("vigil.healthd.v1.HealthDaemon") == SERVING  # the sidecar's own probes
    # The service dies: not ready at once; the heal command finds no process to signal, so
    # after the configured heals healthd escalates: liveness NOT_SERVING (kubelet restarts).
    await service.stop(0)
    await becomes("readiness", NOT_SERVING, 10)
    await becomes("liveness", NOT_SERVING, 30)
    # healthd itself stays live (its own probes pass): the kubelet restarts the service, not it.
    assert await status("vigil.healthd.v1.HealthDaemon") == SERVING
    # The restarted container comes back on its port: ready and live again.
    service = await _service(port, tls)
    try:
        await becomes("readiness", SERVING, 15)
        await becomes("liveness", SERVING, 5)
    finally:
        await service.stop(0)


async def _equals(value: object, want: int) -> bool:
    return await value == want  # type: ignore[misc]
