"""`store_backend` chooses the run store; a workflow process on PostgreSQL serves runs, and
one whose database is unreachable stops at start-up with one line (exit 1)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from services.common import ConfigError, load_config
from services.workflow._config import WorkflowConfig
from services.workflow._pg_store import PostgresRunStore
from services.workflow._sqlite_store import SQLiteRunStore
from services.workflow._store_factory import make_store
from services.workflow.client import WorkflowClient, pb
from tests.conftest import REPO, Proc, python_env
from tests.e2e.test_workflow_crash import _write, start_security


def _cfg(tmp_path: Path, **data: object) -> WorkflowConfig:
    return load_config(WorkflowConfig, _write(tmp_path / "wf.yaml", dict(data)))


def test_sqlite_is_the_default(tmp_path: Path) -> None:
    assert isinstance(make_store(_cfg(tmp_path), clock=lambda: 0.0), SQLiteRunStore)


def test_postgres_backend_reads_the_password_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    cfg = _cfg(tmp_path, store_backend="postgres", postgres={"password_file": str(tmp_path / "pw")})
    assert isinstance(make_store(cfg, clock=lambda: 0.0), PostgresRunStore)


def test_unreadable_password_file_is_a_config_error(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, store_backend="postgres", postgres={"password_file": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match=r"postgres\.password_file"):
        make_store(cfg, clock=lambda: 0.0)


def test_unknown_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="store_backend"):
        _cfg(tmp_path, store_backend="mysql")


def test_unreachable_database_exits_1_with_one_line(tmp_path: Path) -> None:
    cfg = _write(
        tmp_path / "wf.yaml",
        {
            "server": {"port": 0},
            "store_backend": "postgres",
            "postgres": {"dsn": "host=127.0.0.1 port=1 dbname=x user=x", "connect_timeout_s": 1},
            "healthd_address": None,
            "load_entry_points": False,
        },
    )
    done = subprocess.run(
        [sys.executable, "-m", "services.workflow", "--config", str(cfg)],
        capture_output=True,
        text=True,
        env=python_env(),
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 1
    assert "cannot connect to PostgreSQL" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.e2e
async def test_workflow_process_on_postgres_serves_runs(
    spawn: Callable[..., Proc], tmp_path: Path, postgres_dsn: str
) -> None:
    _, sec_port, token = start_security(spawn, tmp_path)
    cfg = _write(
        tmp_path / "wf.yaml",
        {
            "server": {"port": 0},
            "store_backend": "postgres",
            "postgres": {"dsn": postgres_dsn},
            "security_address": f"127.0.0.1:{sec_port}",
            "healthd_address": None,
            "load_entry_points": False,
        },
    )
    proc = spawn("-m", "services.workflow", "--config", str(cfg))
    port = proc.wait_for_port()
    async with WorkflowClient(f"127.0.0.1:{port}", token=token) as client:
        run, _ = await client.start_run("echo", {"message": "hi"}, wait=True)
        assert run.state == pb.RUN_STATE_SUCCEEDED
        assert (await client.get_run(run.run_id)).run_id == run.run_id
