"""`SecurityOperations` in the domain layer (no gRPC): field checks, ValidateInput dispatch by
kind, and the audit records the operations write."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.common import FailedPrecondition, InvalidArgument, PermissionDenied, Unauthenticated
from services.security import AuditFilter, Level, SecurityConfig
from services.security import _operations as op
from services.security._core import SecurityCore
from services.security._operations import Call, SecurityOperations
from tests.unit.security._support import fast_key

Make = Callable[..., tuple[SecurityOperations, Call]]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    """Operations over a real core (real audit database) and a caller of the given level."""
    cores: list[SecurityCore] = []

    def build(level: Level = Level.AUTHENTICATED) -> tuple[SecurityOperations, Call]:
        token, key = fast_key("alice", level)
        home = tmp_path / f"core{len(cores)}"
        (home / "data").mkdir(parents=True)
        (home / "data" / "a.txt").write_text("x")
        policy = home / "policy.yaml"
        policy.write_text("rules:\n  - {match: 'read:*', min_level: AUTHENTICATED}\n")
        cfg = SecurityConfig.model_validate(
            {
                "auth": {"api_keys": [key.model_dump()]},
                "policy_file": str(policy),
                "roots": {"default": str(home / "data")},
                "audit": {"db_path": str(home / "audit.db")},
            }
        )
        cores.append(SecurityCore.from_config(cfg))
        return SecurityOperations(cores[-1]), Call(token=lambda: token, request_id="r-1")

    yield build
    for core in cores:
        core.close()


def violations(err: InvalidArgument) -> list[tuple[str, str]]:
    return [(v.field, v.reason) for v in err.violations]


async def test_each_kind_reaches_its_validator(make: Make) -> None:
    ops, call = make()
    ok = await ops.validate(call, op.PathInput("default", "a.txt"))
    assert ok.canonical_path.endswith("/data/a.txt") and ok.findings == []
    assert (await ops.validate(call, op.PromptInput("hello"))).findings == []
    points = [{"t": 1.0, "values": [0.0]}, {"t": 0.5, "values": [0.0]}]
    with pytest.raises(InvalidArgument) as info:
        await ops.validate(call, op.TrajectoryInput(points, require_monotonic_time=True))
    assert violations(info.value)[0][0].startswith("trajectory.points")
    assert (await ops.validate(call, op.TrajectoryInput(points, require_monotonic_time=False))).findings == []
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    with pytest.raises(InvalidArgument) as info:
        await ops.validate(call, op.ParamsInput(schema, {"n": "one"}))
    assert violations(info.value)[0][0].startswith("params.params")


async def test_blocking_findings_are_audited_as_denials(make: Make) -> None:
    ops, call = make()
    with pytest.raises(InvalidArgument, match="path input failed validation"):
        await ops.validate(call, op.PathInput("default", "../../etc/passwd"))
    records, _ = ops.core.audit.list(AuditFilter(action="validate"))
    assert [(r.resource, r.decision, r.subject, r.request_id) for r in records] == [
        ("path", "DENY", "alice", "r-1")
    ]


async def test_missing_input_is_refused_after_authentication(make: Make) -> None:
    ops, call = make()
    with pytest.raises(Unauthenticated):
        await ops.validate(Call(token=lambda: "wrong"), None)
    with pytest.raises(InvalidArgument) as info:
        await ops.validate(call, None)
    assert violations(info.value) == [("input", "REQUIRED")]


async def test_field_checks_come_first(make: Make) -> None:
    ops, call = make()
    with pytest.raises(InvalidArgument) as info:
        await ops.authorize(call, "Bad Action", "r\x00")
    assert violations(info.value) == [("action", "BAD_ACTION"), ("resource", "BAD_RESOURCE")]
    bad_id = Call(token=call.token, request_id="has space")
    with pytest.raises(InvalidArgument) as info:
        await ops.sanitize(bad_id, "text", {})
    assert violations(info.value) == [("request_id", "BAD_ID")]
    principal, decision, record = await ops.authorize(call, "read", "doc")
    assert principal.subject == "alice" and decision.allowed and record.decision == "ALLOW"


async def test_artifact_fetch_needs_privilege_and_a_root(make: Make) -> None:
    ops, call = make()
    with pytest.raises(PermissionDenied, match="PRIVILEGED"):
        await ops.fetch_artifact(call, "https://127.0.0.1:1/x", "0" * 64, "x")
    ops_admin, admin = make(Level.ADMIN)
    with pytest.raises(FailedPrecondition, match="no artifact_root"):
        await ops_admin.fetch_artifact(admin, "https://127.0.0.1:1/x", "0" * 64, "x")
