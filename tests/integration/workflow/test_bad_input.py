"""Bad input that used to escape as INTERNAL is INVALID_ARGUMENT naming the field, and the
server keeps serving (real workflow and security servers)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct

from services.workflow._app import WorkflowApp
from services.workflow.client import pb
from tests.integration.workflow.conftest import SecurityEnv, client
from vigil.workflow.v1 import workflow_pb2_grpc as pb_grpc

BAD_SECONDS = 10**12  # ~ year 33658: a valid int64, not a valid Timestamp


@pytest.fixture
async def stub(
    app: WorkflowApp, security: SecurityEnv
) -> AsyncIterator[tuple[pb_grpc.WorkflowServiceStub, tuple]]:
    async with grpc.aio.insecure_channel(app.server.address) as channel:
        yield pb_grpc.WorkflowServiceStub(channel), (("authorization", f"Bearer {security.alice}"),)


async def invalid(call: object, field: str) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert field in (info.value.details() or "")
    return info.value.details() or ""


async def test_out_of_range_timestamps_are_invalid_argument(stub: tuple, app: WorkflowApp) -> None:
    s, md = stub
    req = pb.StartRunRequest(workflow="echo")
    req.not_before.seconds = BAD_SECONDS
    await invalid(s.StartRun(req, metadata=md), "not_before")
    for field in ("created_after", "created_before"):
        lr = pb.ListRunsRequest()
        getattr(lr, field).seconds = -BAD_SECONDS
        await invalid(s.ListRuns(lr, metadata=md), field)
    await s.StartRun(pb.StartRunRequest(workflow="echo"), metadata=md)  # still serving


@pytest.mark.parametrize("seq", [2**63, 10**30])
async def test_forged_page_token_beyond_int64_is_invalid_argument(stub: tuple, seq: int) -> None:
    s, md = stub
    await s.StartRun(pb.StartRunRequest(workflow="echo"), metadata=md)
    real = (await s.ListRuns(pb.ListRunsRequest(page_size=1), metadata=md)).runs
    assert real
    # Forge: keep the real token's fingerprint (take it from a real second-page token).
    await s.StartRun(pb.StartRunRequest(workflow="echo"), metadata=md)
    token = (await s.ListRuns(pb.ListRunsRequest(page_size=1), metadata=md)).next_page_token
    body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    body["s"] = seq
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
    await invalid(s.ListRuns(pb.ListRunsRequest(page_size=1, page_token=forged), metadata=md), "page_token")


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
async def test_non_finite_params_are_invalid_argument(stub: tuple, number: float) -> None:
    s, md = stub
    params = Struct()
    params.update({"ok": 1, "nested": {"list": [1, number]}})
    details = await invalid(
        s.StartRun(pb.StartRunRequest(workflow="echo", params=params), metadata=md), "params"
    )
    assert "params.nested.list[1]" in details


async def test_nul_characters_in_text_fields_are_invalid_argument(
    stub: tuple, app: WorkflowApp, security: SecurityEnv
) -> None:
    s, md = stub
    await invalid(
        s.StartRun(pb.StartRunRequest(workflow="echo", idempotency_key="a\x00b"), metadata=md),
        "idempotency_key",
    )
    await invalid(
        s.StartRun(pb.StartRunRequest(workflow="echo", labels={"k": "v\x00"}), metadata=md), "labels"
    )
    await invalid(
        s.StartRun(pb.StartRunRequest(workflow="echo", labels={"k\x00": "v"}), metadata=md), "labels"
    )
    await invalid(s.GetRun(pb.GetRunRequest(run_id="r\x00"), metadata=md), "run_id")
    await invalid(s.CancelRun(pb.CancelRunRequest(run_id="r\x00"), metadata=md), "run_id")
    await invalid(s.ListRuns(pb.ListRunsRequest(labels={"k": "\x00"}), metadata=md), "labels")
    async with client(app, security.alice) as c:
        run, created = await c.start_run("echo", {"a": 1}, wait=True, timeout_s=10)
    assert created and run.state == pb.RUN_STATE_SUCCEEDED


async def test_malformed_authorization_is_unauthenticated_naming_the_form(stub: tuple) -> None:
    """A header that is not 'Bearer <token>' is refused, not taken for an anonymous call."""
    s, md = stub
    for call in (
        s.StartRun(pb.StartRunRequest(workflow="echo"), metadata=(("authorization", "Basic abc"),)),
        s.ListRuns(pb.ListRunsRequest(), metadata=(("authorization", "Bearer "),)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "must be 'Bearer <token>'" in (info.value.details() or "")
    await s.StartRun(pb.StartRunRequest(workflow="echo"), metadata=md)  # still serving
