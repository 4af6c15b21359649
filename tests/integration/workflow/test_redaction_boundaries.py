"""A secret a caller puts anywhere in a request never lands in runs.db, the audit DB, the logs
or GetRun/ListRuns output (issue 13, item 3): params keys and values, labels, idempotency
keys, a handler's error message, Authorize.resource, VerifyArtifact.path and the workflow
name of an unauthenticated Screen; GetRunHistory and RetryRun too. The files' bytes are
searched, WAL included."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from services.common import set_log_redactor
from services.common._logging import JsonFormatter
from services.security import redact_message
from services.workflow._app import WorkflowApp
from services.workflow.client import pb
from tests.conftest import eventually
from tests.integration.workflow.conftest import SecurityEnv, StartWorkflow, client, terminal_run
from vigil.security.v1 import security_pb2 as spb
from vigil.security.v1 import security_pb2_grpc as spb_grpc

AKIA = "AKIAQWERTYUIOPASDFGH"
ASIA = "ASIAZXCVBNMLKJHGFDSA"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJlLXNlY3JldA"
EMAIL = "mallory.secret@example.com"
GHP = "ghp_" + "Zx9" * 12
PASSWORD = "hunter2-Tr0ub4dor"
SECRETS = [AKIA, ASIA, JWT, EMAIL, GHP, PASSWORD, "hunter2"]


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Every log line of both in-process servers, JSON, under the entry points' log policy."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    set_log_redactor(redact_message)
    try:
        yield out
    finally:
        set_log_redactor(None)
        root.removeHandler(handler)
        root.setLevel(old_level)


def file_bytes(*globs: tuple[Path, str]) -> bytes:
    return b"".join(p.read_bytes() for base, pattern in globs for p in sorted(base.glob(pattern)))


def leaked(blob: bytes) -> list[str]:
    return [s for s in SECRETS if s.encode() in blob]


async def test_a_secret_anywhere_in_a_request_is_stored_and_served_redacted(
    start_workflow: StartWorkflow, security: SecurityEnv, tmp_path: Path, logs: io.StringIO
) -> None:
    app: WorkflowApp = await start_workflow(security.address)
    params = {
        AKIA: "as a key",
        "nested": {JWT: [1, 2], "email": EMAIL},
        "dsn": f"postgresql://app:{PASSWORD}@db/app",
        "note": f"password={PASSWORD}",
    }
    labels = {"owner": EMAIL, GHP: "token-as-label-key", "aws": ASIA}
    async with client(app, security.alice) as c:
        run, created = await c.start_run("counting", params, idempotency_key=JWT, labels=labels, wait=True)
        assert created and run.state == pb.RUN_STATE_SUCCEEDED
        again, created = await c.start_run("counting", params, idempotency_key=JWT, labels=labels)
        assert not created and again.run_id == run.run_id  # lookups hash the key the same way
        failed, _ = await c.start_run("leaky", {"note": f"key {AKIA} password={PASSWORD}"})
        failed = await eventually(lambda: terminal_run(c, failed.run_id))
        assert failed.state == pb.RUN_STATE_FAILED and "[REDACTED:" in failed.error.message
        got = await c.get_run(run.run_id)
        listed, _ = await c.list_runs(labels={"owner": EMAIL})  # a raw filter finds the redacted label
        assert [r.run_id for r in listed] == [run.run_id]
        history = await c.get_run_history(failed.run_id)
        retried, _ = await c.retry_run(run.run_id, idempotency_key=GHP, wait=True)
    served = b"".join(m.SerializeToString() for m in (run, again, failed, got, *listed, history, retried))
    assert leaked(served) == []
    assert "[REDACTED:aws_access_key]" in got.params and "[REDACTED:github_token]" in got.labels
    assert got.idempotency_key.startswith("hmac-sha256:")

    # The security service's own boundaries: caller-chosen text in audit fields.
    async with grpc.aio.insecure_channel(security.address) as channel:
        stub = spb_grpc.SecurityServiceStub(channel)
        auth = (("authorization", f"Bearer {security.alice}"),)
        await stub.Authorize(spb.AuthorizeRequest(action="workflow.start", resource=AKIA), metadata=auth)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.VerifyArtifact(
                spb.VerifyArtifactRequest(path=f"{GHP}/{EMAIL}", expected_sha256="0" * 64), metadata=auth
            )
        with pytest.raises(grpc.aio.AioRpcError):  # unauthenticated: the name is caller text too
            await stub.Screen(spb.ScreenRequest(token="bad", workflow=ASIA, request_id=JWT))
        admin = (("authorization", f"Bearer {security.admin}"),)
        events = await stub.ListAuditEvents(spb.ListAuditEventsRequest(page_size=100), metadata=admin)
    assert len(events.events) >= 6 and leaked(events.SerializeToString()) == []

    await app.server.stop(0)  # close the stores: everything is in the files now
    await security.server.stop(0)
    runs_db = file_bytes((tmp_path, "runs-0.db*"))
    audit_db = file_bytes((tmp_path, "audit.db*"))
    assert runs_db and audit_db
    assert leaked(runs_db) == [], "runs.db"
    assert leaked(audit_db) == [], "audit.db"
    assert b"[REDACTED:" in runs_db and b"[REDACTED:" in audit_db
    assert leaked(logs.getvalue().encode()) == [], "logs"
