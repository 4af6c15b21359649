"""healthd's mutating RPCs are audited in a keyed, anchored chain before they act; with the
security service's file, key and head file (as the local stack configures it) both processes
append to ONE chain; an action that cannot be recorded is refused and not done."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.security import AuditConfig, open_audit_log
from tests.healthd_util import eventually, flag_check
from vigil.healthd.v1 import healthd_pb2 as _pb


def _auth(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


async def test_heal_and_maintenance_are_recorded_in_the_shared_chain(
    start_daemon: Any, tokens: dict[str, Any], tmp_path: Path
) -> None:
    flag = tmp_path / "db-up"
    flag.touch()
    audit = {"db_path": str(tmp_path / "vigil" / "security-audit.db")}
    security_log = open_audit_log(AuditConfig.model_validate(audit))  # the security service's side
    security_log.append(action="authorize", decision="ALLOW", subject="alice", resource="wf")
    component = {
        "name": "db",
        "checks": [flag_check(flag)],
        "healing": {"action": "command", "command": ["true"]},
    }
    running = await start_daemon(components=[component], audit=audit)
    await eventually(lambda: running.engine.snapshot().system.status.value == "HEALTHY", 10)
    admin = _auth(tokens["admin"])
    await running.stub.SetMaintenance(
        _pb.SetMaintenanceRequest(component="db", enabled=True, reason="migrating"), metadata=admin
    )
    await running.stub.SetMaintenance(
        _pb.SetMaintenanceRequest(component="db", enabled=False), metadata=admin
    )
    await running.stub.Heal(_pb.HealRequest(component="db", reason="kick"), metadata=admin)
    security_log.append(action="authorize", decision="DENY", subject="bob", resource="wf")

    records = security_log.list(page_size=100, newest_first=False)[0]
    assert [(r.seq, r.action, r.resource) for r in records] == [
        (1, "authorize", "wf"),
        (2, "healthd.maintenance.on", "db"),
        (3, "healthd.maintenance.off", "db"),
        (4, "healthd.heal", "db"),
        (5, "authorize", "wf"),
    ]
    assert records[1].subject == "ops" and "migrating" in records[1].reason
    result = security_log.verify()
    assert result.ok and result.checked == 5, result.problems
    security_log.close()


async def test_an_action_that_cannot_be_audited_is_refused(
    start_daemon: Any, tokens: dict[str, Any], tmp_path: Path
) -> None:
    flag = tmp_path / "db-up"
    flag.touch()
    db = tmp_path / "healthd-audit.db"
    running = await start_daemon(components=[{"name": "db", "checks": [flag_check(flag)]}],
                                 audit={"db_path": str(db)})  # fmt: skip
    conn = sqlite3.connect(db, isolation_level=None)  # fault injector at the storage layer
    conn.execute("CREATE TRIGGER fail BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    conn.close()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await running.stub.SetMaintenance(
            _pb.SetMaintenanceRequest(component="db", enabled=True), metadata=_auth(tokens["admin"])
        )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    view = next(v for v in running.engine.snapshot().components if v.health.name == "db")
    assert view.heal_state.value != "MAINTENANCE"  # not done


def test_the_shipped_healthd_configs_audit() -> None:
    import yaml

    from tests.conftest import REPO

    local = yaml.safe_load((REPO / "deploy" / "local" / "healthd.yaml").read_text())
    security = yaml.safe_load((REPO / "deploy" / "local" / "security.yaml").read_text())
    assert local["audit"]["db_path"] == security["audit"]["db_path"]  # one chain on one machine


async def test_operator_reasons_are_bounded_and_their_control_characters_escaped(
    start_daemon: Any, tokens: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flag = tmp_path / "db-up"
    flag.touch()
    audit = {"db_path": str(tmp_path / "healthd-audit.db")}
    component = {
        "name": "db",
        "checks": [flag_check(flag)],
        "healing": {"action": "command", "command": ["true"]},
    }
    running = await start_daemon(components=[component], audit=audit)
    await eventually(lambda: running.engine.snapshot().system.status.value == "HEALTHY", 10)
    admin = _auth(tokens["admin"])
    for call in (
        lambda: running.stub.Heal(_pb.HealRequest(component="db", reason="r" * 501), metadata=admin),
        lambda: running.stub.SetMaintenance(
            _pb.SetMaintenanceRequest(component="db", enabled=True, reason="m" * 100_000), metadata=admin
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call()  # one after the other: a unary call starts when made
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "reason is" in (refused.value.details() or "") and "longer than 500" in (
            refused.value.details() or ""
        )
    assert running.daemon.audit.list(page_size=10)[0] == []  # refused before the record: nothing done
    forged = "kick\naudit: root heal everything\x1b[2J\u202egnp.exe\r"
    with caplog.at_level("INFO", logger="vigil.healthd"):
        await running.stub.Heal(_pb.HealRequest(component="db", reason=forged), metadata=admin)
    escaped = "kick\\naudit: root heal everything\\x1b[2J\\u202egnp.exe\\r"
    record = running.daemon.audit.list(page_size=10)[0][0]
    assert record.action == "healthd.heal" and record.reason == escaped
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("audit:")]
    assert lines == [f"audit: ops heal db ({escaped})"]
    events = [e.message for e in running.engine.events.since(0, "db", limit=0)]
    assert any(escaped in m for m in events)
    assert not any(ch in m for m in events for ch in "\n\r\x1b\u202e")
    # A typed component name is echoed escaped too.
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await running.stub.CheckNow(_pb.CheckNowRequest(component="d\x1b[1mb\n"), metadata=admin)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'d\\x1b[1mb\\n'" in (unknown.value.details() or "")
