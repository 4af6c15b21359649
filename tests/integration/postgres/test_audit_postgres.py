"""The audit log in a real PostgreSQL: one chain shared by replicas, tampering reported."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from services.security import AuditKeys, AuditLog, AuditPostgresConfig, PostgresAuditStore, SecurityConfig
from services.security._core import SecurityCore
from tests.conftest import REPO, python_env

KEYS = AuditKeys({"k1": b"7" * 32}, "k1")

# One replica: appends ``n`` records concurrently (group commit) through its own connection.
_REPLICA = """
import asyncio, sys
from services.security import AuditKeys, AuditLog, AuditPostgresConfig, PostgresAuditStore
dsn, n, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
log = AuditLog(PostgresAuditStore(AuditPostgresConfig(dsn=dsn)), keys=AuditKeys({"k1": b"7" * 32}, "k1"))
async def main():
    await asyncio.gather(*(log.append_async(action="x", decision="ALLOW", request_id=f"{name}-{i}")
                           for i in range(n)))
asyncio.run(main())
log.close()
"""


def _log(dsn: str, head_file: Path | None = None) -> AuditLog:
    return AuditLog(PostgresAuditStore(AuditPostgresConfig(dsn=dsn)), keys=KEYS, head_file=head_file)


def test_two_replica_processes_share_one_sequence(postgres_dsn: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _REPLICA, postgres_dsn, "150", name], cwd=REPO, env=python_env()
        )
        for name in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    log = _log(postgres_dsn)
    result = log.verify()
    assert result.ok and result.checked == 300, result.problems
    records = log.list(page_size=1000, newest_first=False)[0]
    assert [r.seq for r in records] == list(range(1, 301))
    assert {r.request_id[0] for r in records} == {"a", "b"}
    log.close()


async def test_replicas_in_one_process_interleave_in_one_chain(postgres_dsn: str) -> None:
    a, b = _log(postgres_dsn), _log(postgres_dsn)
    await asyncio.gather(
        *(
            log.append_async(action="x", decision="ALLOW", request_id=str(i))
            for i in range(40)
            for log in (a, b)
        )
    )
    result = a.verify()
    assert result.ok and result.checked == 80, result.problems
    a.close()
    b.close()


def _tamper(dsn: str, sql: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.encode())


@pytest.mark.parametrize(
    ("sql", "first_bad", "problem"),
    [
        ("UPDATE audit SET decision='DENY' WHERE seq=3", 3, "record 3 was modified"),
        ("DELETE FROM audit WHERE seq=5", 5, "missing"),
        ("DELETE FROM audit WHERE seq >= 7", 7, "anchored but are gone"),
        ("DELETE FROM audit", 1, "anchored but are gone"),
    ],
)
def test_tampering_in_postgres_is_reported(
    postgres_dsn: str, tmp_path: Path, sql: str, first_bad: int, problem: str
) -> None:
    log = _log(postgres_dsn, tmp_path / "head")
    for i in range(8):
        log.append(action="x", decision="DENY" if i % 2 else "ALLOW")
    log.close()
    _tamper(postgres_dsn, sql)
    again = _log(postgres_dsn, tmp_path / "head")
    result = again.verify()
    assert not result.ok and result.first_bad_seq == first_bad, result.problems
    assert any(problem in p for p in result.problems)
    again.close()


def test_the_service_config_selects_postgres(postgres_dsn: str, tmp_path: Path) -> None:
    key_file = tmp_path / "audit-key"
    key_file.write_text("signing: k1\nkeys:\n  k1: " + "Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc=\n")
    cfg = SecurityConfig.model_validate(
        {
            "audit": {
                "backend": "postgres",
                "postgres": {"dsn": postgres_dsn},
                "keys": {"key_file": str(key_file)},
            }
        }
    )
    core = SecurityCore.from_config(cfg)
    core.audit.append(action="x", decision="ALLOW")
    assert core.audit.verify().ok
    core.close()
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (1,)
    with pytest.raises(ValueError, match=r"needs audit\.keys\.key_file"):
        SecurityConfig.model_validate({"audit": {"backend": "postgres"}})
