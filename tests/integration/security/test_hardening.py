"""Review findings against a real server: ReDoS, audit flooding, bad input, unaudited refusals."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import eventually
from tests.integration.security.conftest import Stack
from tests.integration.security.test_rpcs import fails, screen_req, struct, violations
from vigil.security.v1 import security_pb2 as pb

# Each would keep Python's backtracking `re` busy for far longer than any test deadline.
ADVERSARIAL = [
    ("^.*.*.*.*.*.*.*=", "x" * 3000),
    ("^\\d*\\d*\\d*\\d*\\d*\\d*x", "1" * 3000),
    ("(a+)+$", "a" * 3000 + "!"),
]


async def test_adversarial_schema_patterns_answer_and_health_keeps_answering(stack: Stack) -> None:
    health = health_pb2_grpc.HealthStub(stack.channel)
    for pattern, text in ADVERSARIAL:
        schema = struct({"properties": {"s": {"type": "string", "pattern": pattern}}})
        params = pb.ParamsInput(params=struct({"s": text}), schema=schema)
        call = asyncio.ensure_future(
            stack.stub.ValidateInput(
                pb.ValidateInputRequest(params=params), metadata=stack.auth("user"), timeout=20
            )
        )
        screen = asyncio.ensure_future(
            stack.stub.Screen(
                screen_req(
                    stack.tokens["user"],
                    params=struct({"s": text, "prompt": "p"}),
                    params_schema=schema,
                    prompt_fields=[],
                    path_fields=[],
                ),
                timeout=20,
            )
        )
        # The server answers health while the adversarial calls are in flight.
        ok = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert ok.status == health_pb2.HealthCheckResponse.SERVING
        err = await fails(call, grpc.StatusCode.INVALID_ARGUMENT)
        assert violations(err) == [("params.params.s", "SCHEMA_PATTERN")], pattern
        err = await fails(screen, grpc.StatusCode.INVALID_ARGUMENT)
        assert violations(err) == [("params.s", "SCHEMA_PATTERN")], pattern


async def test_backreference_patterns_are_refused_as_bad_schema(stack: Stack) -> None:
    schema = struct({"properties": {"s": {"pattern": "(a)\\1"}}})
    params = pb.ParamsInput(params=struct({"s": "aa"}), schema=schema)
    err = await fails(
        stack.stub.ValidateInput(pb.ValidateInputRequest(params=params), metadata=stack.auth("user")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert violations(err) == [("params.schema", "BAD_SCHEMA")]


async def test_list_audit_events_bad_timestamps_and_tokens_are_invalid_argument(stack: Stack) -> None:
    md = stack.auth("admin")
    too_late = pb.ListAuditEventsRequest()
    too_late.since.seconds = 10**12  # beyond year 9999
    err = await fails(stack.stub.ListAuditEvents(too_late, metadata=md), grpc.StatusCode.INVALID_ARGUMENT)
    assert violations(err) == [("since", "TIMESTAMP_OUT_OF_RANGE")]
    bad_nanos = pb.ListAuditEventsRequest()
    bad_nanos.until.nanos = -5
    err = await fails(stack.stub.ListAuditEvents(bad_nanos, metadata=md), grpc.StatusCode.INVALID_ARGUMENT)
    assert violations(err) == [("until", "TIMESTAMP_OUT_OF_RANGE")]
    for token in ("\u00b2", "9" * 5000, "\u0661"):
        await fails(
            stack.stub.ListAuditEvents(pb.ListAuditEventsRequest(page_token=token), metadata=md),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
    window = pb.ListAuditEventsRequest()
    window.since.seconds = 1
    assert (await stack.stub.ListAuditEvents(window, metadata=md)).events  # valid window still works


async def test_audit_writes_wait_off_the_loop(stack: Stack) -> None:
    """A decision whose audit record waits on a locked database does not stall other calls."""
    health = health_pb2_grpc.HealthStub(stack.channel)
    await stack.stub.Sanitize(pb.SanitizeRequest(text="x"), metadata=stack.auth("user"))  # writer warm
    blocker = sqlite3.connect(stack.config.audit.db_path, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        call = asyncio.ensure_future(
            stack.stub.Authenticate(pb.AuthenticateRequest(token="vgl_nope"), timeout=20)
        )
        ok = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert ok.status == health_pb2.HealthCheckResponse.SERVING
        assert not call.done()  # still waiting for its audit record, off the loop
        blocker.execute("ROLLBACK")
        await fails(call, grpc.StatusCode.UNAUTHENTICATED)
    finally:
        blocker.close()


async def test_missing_or_malformed_authorization_is_audited(stack: Stack) -> None:
    stub = stack.stub
    await fails(stub.Sanitize(pb.SanitizeRequest(text="x")), grpc.StatusCode.UNAUTHENTICATED)
    await fails(
        stub.ListAuditEvents(pb.ListAuditEventsRequest(), metadata=[("authorization", "Basic abc")]),
        grpc.StatusCode.UNAUTHENTICATED,
    )
    await fails(stub.Authenticate(pb.AuthenticateRequest()), grpc.StatusCode.UNAUTHENTICATED)
    page = await stub.ListAuditEvents(
        pb.ListAuditEventsRequest(decision=pb.DECISION_DENY, subject="anonymous"),
        metadata=stack.auth("admin"),
    )
    seen = {(e.action, e.reason) for e in page.events}
    assert ("sanitize", "missing 'authorization: Bearer <token>' metadata") in seen
    assert ("audit.list", "authorization metadata must be 'Bearer <token>'") in seen
    assert ("authenticate", "missing 'authorization: Bearer <token>' metadata") in seen


async def test_anonymous_failures_do_not_grow_the_audit_log_without_bound(
    start_stack: Any, tmp_path: Path
) -> None:
    stack: Stack = await start_stack(
        audit={
            "db_path": str(tmp_path / "audit.db"),
            "health_probe_s": 0.05,
            "failures": {"per_peer_burst": 2, "per_peer_per_s": 0.001, "summary_every_s": 0.1},
        }
    )
    for _ in range(20):
        await fails(
            stack.stub.Authenticate(pb.AuthenticateRequest(token="vgl_x")), grpc.StatusCode.UNAUTHENTICATED
        )
    md = stack.auth("admin")

    async def all_summarized() -> bool:  # there may be several summary records
        page = await stack.stub.ListAuditEvents(
            pb.ListAuditEventsRequest(action="authenticate.failures"), metadata=md
        )
        return sum(int(e.reason.split()[0]) for e in page.events) == 18  # "N more failed ..."

    await eventually(all_summarized, timeout=10)
    single = await stack.stub.ListAuditEvents(pb.ListAuditEventsRequest(action="authenticate"), metadata=md)
    assert len(single.events) == 2
