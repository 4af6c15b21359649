"""VerifyArtifact refusals (issue 13, point 6): a symlink escape is reported as such, not as
NOT_FOUND from a later root, and every refused verification leaves an audit record."""

from __future__ import annotations

import grpc

from tests.integration.security.conftest import Stack
from tests.integration.security.test_rpcs import fails, violations
from vigil.security.v1 import security_pb2 as pb

DIGEST = "0" * 64


async def _verify_events(stack: Stack) -> list[pb.AuditEvent]:
    page = await stack.stub.ListAuditEvents(
        pb.ListAuditEventsRequest(action="artifact.verify"), metadata=stack.auth("admin")
    )
    return list(page.events)


async def test_a_symlink_escape_in_the_first_root_is_reported_not_hidden_by_the_second(stack: Stack) -> None:
    outside = stack.tmp / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"secret")
    (stack.tmp / "data" / "evil.bin").symlink_to(outside / "secret.bin")  # not in the artifact root
    (stack.tmp / "data" / "evil-dir").symlink_to(outside, target_is_directory=True)
    for path in ("evil.bin", "evil-dir/secret.bin"):
        err = await fails(
            stack.stub.VerifyArtifact(
                pb.VerifyArtifactRequest(path=path, expected_sha256=DIGEST), metadata=stack.auth("user")
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert violations(err) == [("path", "PATH_SYMLINK_ESCAPE")], path


async def test_refused_verifications_are_audited(stack: Stack) -> None:
    (stack.tmp / "data" / "evil.bin").symlink_to("/etc/hostname")
    md = stack.auth("user")
    refusals = [
        (pb.VerifyArtifactRequest(path="missing.bin", expected_sha256=DIGEST), grpc.StatusCode.NOT_FOUND),
        (pb.VerifyArtifactRequest(path="../x", expected_sha256=DIGEST), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.VerifyArtifactRequest(path="evil.bin", expected_sha256=DIGEST), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.VerifyArtifactRequest(path="a.bin", expected_sha256="xyz"), grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for request, code in refusals:
        await fails(stack.stub.VerifyArtifact(request, metadata=md), code)
    events = await _verify_events(stack)
    assert len(events) == len(refusals)
    assert all(e.decision == pb.DECISION_DENY and e.subject == "user" for e in events)
    reasons = [e.reason for e in reversed(events)]  # oldest first, as sent
    assert reasons[0].startswith("refused (NOT_FOUND)")
    assert all(r.startswith("refused (INVALID_ARGUMENT)") for r in reasons[1:])
