"""Optional TLS and mTLS on the security port, with certificates from a throwaway CA."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from tests.unit.security._support import CertFiles, make_ca_and_cert
from vigil.security.v1 import security_pb2 as pb
from vigil.security.v1 import security_pb2_grpc as pb_grpc


async def test_tls(start_stack: Any, certs: CertFiles) -> None:
    creds = grpc.ssl_channel_credentials(root_certificates=certs.ca.read_bytes())
    stack = await start_stack(
        credentials=creds,
        server={"port": 0, "tls": {"cert_file": str(certs.cert), "key_file": str(certs.key)}},
    )
    resp = await stack.stub.Authenticate(pb.AuthenticateRequest(token=stack.tokens["user"]))
    assert resp.principal.subject == "user"


async def test_mtls_requires_a_client_certificate(start_stack: Any, certs: CertFiles, tmp_path: Any) -> None:
    client = make_ca_and_cert(tmp_path / "client", name="client", ca=certs.ca_pair)  # type: ignore[attr-defined]
    tls = {"cert_file": str(certs.cert), "key_file": str(certs.key), "client_ca_file": str(certs.ca)}
    with_cert = grpc.ssl_channel_credentials(
        root_certificates=certs.ca.read_bytes(),
        private_key=client.key.read_bytes(),
        certificate_chain=client.cert.read_bytes(),
    )
    stack = await start_stack(credentials=with_cert, server={"port": 0, "tls": tls})
    resp = await stack.stub.Authenticate(pb.AuthenticateRequest(token=stack.tokens["admin"]))
    assert resp.principal.subject == "admin"
    port = stack.server.port
    no_cert = grpc.ssl_channel_credentials(root_certificates=certs.ca.read_bytes())
    async with grpc.aio.secure_channel(f"localhost:{port}", no_cert) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await pb_grpc.SecurityServiceStub(channel).Authenticate(
                pb.AuthenticateRequest(token=stack.tokens["admin"]), timeout=5
            )
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
