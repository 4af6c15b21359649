"""Two security processes on one SQLite audit file append to ONE chain (as the local stack's
replicas do): concurrent Authorize calls through both, then VerifyAuditLog is ok and the
sequence numbers are contiguous, with no fork and no duplicate."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import yaml

from tests.conftest import REPO, python_env
from vigil.security.v1 import security_pb2 as pb
from vigil.security.v1 import security_pb2_grpc as pb_grpc

pytestmark = pytest.mark.e2e

CALLS_PER_REPLICA = 60


async def test_two_processes_append_to_one_chain(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "security.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "server": {"port": 0, "grace_period_s": 1},
                "auth": {"keys_file": str(tmp_path / "keys.yaml")},
                "audit": {"db_path": str(tmp_path / "audit.db")},
                "rate_limit": {"enabled": False},
            }
        )
    )
    token_file = tmp_path / "dev-token"
    subprocess.run(
        [sys.executable, "-m", "services.security", "dev-token", "--config", str(cfg), "--token-file",
         str(token_file)], cwd=REPO, env=python_env(), check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    token = token_file.read_text().strip()
    replicas = [spawn("-m", "services.security", "--config", str(cfg)) for _ in range(2)]
    ports = [r.wait_for_port() for r in replicas]
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{p}") for p in ports]
    try:
        stubs = [pb_grpc.SecurityServiceStub(c) for c in channels]

        async def authorize(i: int) -> str:
            req = pb.AuthorizeRequest(token=token, action="workflow.start", resource=f"wf-{i}")
            return (await stubs[i % 2].Authorize(req, timeout=20)).audit_id

        # One call each first: a replica verifies the key (scrypt, rate limited) once, then caches it.
        warm = [await authorize(0), await authorize(1)]
        audit_ids = await asyncio.gather(*(authorize(i) for i in range(2 * CALLS_PER_REPLICA)))
        assert len({*warm, *audit_ids}) == 2 * CALLS_PER_REPLICA + 2
        md = (("authorization", f"Bearer {token}"),)
        for stub in stubs:  # each replica verifies the whole, shared chain
            verdict = await stub.VerifyAuditLog(pb.VerifyAuditLogRequest(), metadata=md, timeout=20)
            assert verdict.ok, verdict.problem
        seqs: list[int] = []
        token_page = ""
        while True:
            page = await stubs[0].ListAuditEvents(
                pb.ListAuditEventsRequest(page_size=1000, page_token=token_page), metadata=md, timeout=20
            )
            seqs += [e.seq for e in page.events]
            token_page = page.next_page_token
            if not token_page:
                break
        assert sorted(seqs) == list(range(1, len(seqs) + 1))
        assert len(seqs) >= 2 * CALLS_PER_REPLICA  # every Authorize (and the list calls) recorded
    finally:
        for channel in channels:
            await channel.close()
