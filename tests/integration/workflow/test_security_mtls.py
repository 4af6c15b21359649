"""workflow → security over mTLS: a StartRun is screened through the TLS channel; a client
without a certificate is refused by the security server; bad TLS settings fail at start-up."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from services.common import ClientTLSConfig, ConfigError
from services.workflow._security_client import SecurityClient
from services.workflow.client import pb
from tests.integration.workflow.conftest import StartWorkflow, client, start_security
from tests.unit.security._support import make_ca_and_cert
from vigil.security.v1 import security_pb2 as spb
from vigil.security.v1 import security_pb2_grpc as spb_grpc


async def test_workflow_screens_over_mtls_and_certless_clients_are_refused(
    start_workflow: StartWorkflow, tmp_path: Path
) -> None:
    server_certs = make_ca_and_cert(tmp_path / "pki", name="security")
    wf_cert = make_ca_and_cert(tmp_path / "wf", name="workflow", ca=server_certs.ca_pair)  # type: ignore[attr-defined]
    tls = {"cert_file": str(server_certs.cert), "key_file": str(server_certs.key),
           "client_ca_file": str(server_certs.ca)}  # fmt: skip
    security = await start_security(tmp_path, tls=tls)
    try:
        port = security.server.port
        token_file = tmp_path / "service-token"
        token_file.write_text(security.admin)
        app = await start_workflow(
            f"127.0.0.1:{port}",
            service_token_file=str(token_file),
            security_tls={
                "ca_file": str(server_certs.ca),
                "cert_file": str(wf_cert.cert),
                "key_file": str(wf_cert.key),
                "server_name": "localhost",
            },
        )
        async with client(app, security.alice) as c:
            run, created = await c.start_run("echo", {"greeting": "over mtls", "n": 1}, wait=True)
        assert created and run.state == pb.RUN_STATE_SUCCEEDED and run.audit_id

        # The same server refuses a TLS client that presents no certificate ...
        ca_only = ClientTLSConfig(ca_file=server_certs.ca, server_name="localhost")
        no_cert = SecurityClient(f"127.0.0.1:{port}", tls=ca_only)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await no_cert._stub.Authenticate(spb.AuthenticateRequest(token=security.alice), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            await no_cert.close()
        # ... and a plaintext one.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as plain:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await spb_grpc.SecurityServiceStub(plain).Authenticate(
                    spb.AuthenticateRequest(token=security.alice), timeout=5
                )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await security.server.stop(0)


def test_client_tls_settings_are_validated_in_one_place(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cert_file and key_file must be set together"):
        ClientTLSConfig(cert_file=tmp_path / "c.pem")
    with pytest.raises(ConfigError, match=r"tls\.ca_file"):
        SecurityClient("127.0.0.1:1", tls=ClientTLSConfig(ca_file=tmp_path / "missing.pem"))
