"""TLS and mTLS: healthd's own port, the grpc check as a client, and probe's -tls flags."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2 as _hpb
from grpc_health.v1 import health_pb2_grpc as _hpb_grpc

from healthd import Status
from healthd._checks import GrpcHealthCheck, HttpCheck
from healthd._config import ClientTLS, GrpcCheckConfig, HttpCheckConfig
from services.common import HealthServicer, TLSConfig, server_credentials
from tests.unit.security._support import CertFiles, body_route, https_server, make_ca_and_cert

from .conftest import run_healthd


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_ca_and_cert(tmp_path_factory.mktemp("tls"), "localhost")


@pytest.fixture
async def mtls_server(certs: CertFiles) -> AsyncIterator[str]:
    server = grpc.aio.server()
    health = HealthServicer()
    _hpb_grpc.add_HealthServicer_to_server(health, server)
    tls = TLSConfig(cert_file=certs.cert, key_file=certs.key, client_ca_file=certs.ca)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(tls))
    await server.start()
    await health.set("svc", _hpb.HealthCheckResponse.SERVING)
    yield f"127.0.0.1:{port}"
    await server.stop(0)


async def test_grpc_check_over_mtls(mtls_server: str, certs: CertFiles) -> None:
    tls = ClientTLS(ca_file=certs.ca, cert_file=certs.cert, key_file=certs.key, server_name="localhost")
    check = GrpcHealthCheck(GrpcCheckConfig(kind="grpc", address=mtls_server, service="svc", tls=tls))
    assert (await check.check(2)).status is Status.SERVING
    await check.close()
    no_client_cert = GrpcHealthCheck(
        GrpcCheckConfig(kind="grpc", address=mtls_server, service="svc", tls=ClientTLS(ca_file=certs.ca))
    )
    assert (await no_client_cert.check(1)).status is Status.NOT_SERVING
    await no_client_cert.close()


async def _probe(*args: str) -> int:
    return (await run_healthd("probe", *args))[0]


async def test_healthd_serves_mtls_and_probe_speaks_it(
    start_daemon: Any, certs: CertFiles, tmp_path: Path
) -> None:
    tls = {"cert_file": str(certs.cert), "key_file": str(certs.key), "client_ca_file": str(certs.ca)}
    check = {"kind": "exec", "argv": [sys.executable, "-c", "pass"], "interval_s": 0.2}
    running = await start_daemon(
        server={"port": 0, "tls": tls}, components=[{"name": "a", "checks": [check]}]
    )
    addr = f"127.0.0.1:{running.daemon.server.port}"
    client = ["-tls", "-tls-ca-cert", str(certs.ca), "-tls-server-name", "localhost"]
    mtls = [*client, "-tls-client-cert", str(certs.cert), "-tls-client-key", str(certs.key)]
    assert await _probe("-addr", addr, *mtls, "-service", "liveness") == 0
    assert await _probe("-addr", addr, *client, "-connect-timeout", "500ms") == 2  # no client certificate
    assert await _probe("-addr", addr, "-connect-timeout", "500ms") == 2  # plaintext to a TLS port


async def test_http_check_over_https_with_ca(certs: CertFiles) -> None:
    with https_server(certs, {"/healthz": body_route(b"ok")}) as port:
        url = f"https://localhost:{port}/healthz"
        trusted = HttpCheck(
            HttpCheckConfig(kind="http", url=url, expect_body="ok", tls=ClientTLS(ca_file=certs.ca))
        )
        assert (await trusted.check(5)).status is Status.SERVING
        untrusted = await HttpCheck(HttpCheckConfig(kind="http", url=url)).check(5)
        assert untrusted.status is Status.NOT_SERVING and "CERTIFICATE" in untrusted.message.upper()
