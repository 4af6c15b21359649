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
