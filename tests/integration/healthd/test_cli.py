"""The CLI as real processes: probe exit codes (grpc_health_probe's), status table, watch."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import python_env
from tests.healthd_util import eventually, flag_check

from .conftest import REPO, free_port, run_healthd


@pytest.fixture
async def daemon(start_daemon: Any, tmp_path: Path) -> Any:
    flag = tmp_path / "up"
    flag.touch()
    running = await start_daemon(components=[{"name": "db", "checks": [flag_check(flag)]}])
    running.flag = flag
    running.addr = f"127.0.0.1:{running.daemon.server.port}"
    await eventually(lambda: running.engine.statuses()["db"].value == "SERVING", 10)
    return running


async def test_probe_exit_codes(daemon: Any) -> None:
    code, out, _ = await run_healthd("probe", "-addr", daemon.addr, "-service", "db")
    assert (code, out.strip()) == (0, "status: SERVING")
    code, _, _ = await run_healthd("probe", "--addr", daemon.addr)  # overall ""
    assert code == 0
    code, _, err = await run_healthd("probe", "-addr", daemon.addr, "-service", "nope")
    assert code == 3 and "NOT_FOUND" in err
    daemon.flag.unlink()
    await eventually(lambda: daemon.engine.statuses()["db"].value == "NOT_SERVING", 5)
    code, _, err = await run_healthd("probe", "-addr", daemon.addr, "-service", "db")
    assert code == 4 and "NOT_SERVING" in err


async def test_probe_bad_args_and_connect_failure() -> None:
    assert (await run_healthd("probe"))[0] == 1  # -addr is required
    assert (await run_healthd("probe", "-addr", "x:1", "-rpc-timeout", "soon"))[0] == 1
    assert (await run_healthd("probe", "-addr", "x:1", "-tls-ca-cert", "/nope"))[0] == 1  # needs -tls
    code, _, err = await run_healthd(
        "probe", "-addr", f"127.0.0.1:{free_port()}", "-connect-timeout", "200ms"
    )
    assert code == 2 and "failed to connect" in err


async def test_status_prints_the_table(daemon: Any) -> None:
    code, out, _ = await run_healthd("status", "--addr", daemon.addr)
    assert code == 0
    assert "system: HEALTHY" in out and "score: 100" in out
    row = next(line for line in out.splitlines() if line.startswith("db "))
    assert "SERVING" in row and "HEALTHY" in row
    code, out, _ = await run_healthd("status", "--addr", daemon.addr, "--json")
    data = json.loads(out)
    assert code == 0 and data["status"] == "SYSTEM_STATUS_HEALTHY" and data["components"][0]["name"] == "db"


async def test_watch_streams_changes(daemon: Any) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "healthd",
        "watch",
        "--addr",
        daemon.addr,
        cwd=REPO,
        env=python_env(),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readline(), 20)
    assert b"== system HEALTHY" in first
    daemon.flag.unlink()
    lines = []
    while b"UNHEALTHY" not in (line := await asyncio.wait_for(proc.stdout.readline(), 10)):
        lines.append(line)
    assert any(b"COMPONENT_STATUS_CHANGED" in x and b"db" in x for x in lines)
    proc.terminate()
    await proc.wait()
