"""`healthd keep` (make run): a killed healthd is restarted and adopts its children; Ctrl-C in
the gap before the restart still stops every child; a bad config is not retried."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import yaml

from bench import free_ports
from tests.conftest import python_env
from tests.healthd_util import assert_no_pid, eventually, pid_alive
from tests.integration.healthd.conftest import REPO, free_port, run_healthd
from tests.integration.healthd.test_adoption import _pids
from tests.integration.healthd.test_replicas import replicated


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


async def test_keep_restarts_healthd_and_ctrl_c_leaves_no_orphans(tmp_path: Path) -> None:
    port = free_port()
    config = {
        "server": {"port": port, "grace_period_s": 1},
        "http": {"port": 0},
        "run_dir": str(tmp_path / "run"),
        "log_dir": str(tmp_path / "logs"),
        "components": [replicated(free_port(), free_ports(2))],
    }
    path = tmp_path / "healthd.yaml"
    path.write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{port}"
    keeper = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "healthd",
        "keep",
        "--config",
        str(path),
        cwd=REPO,
        env=python_env(),
        stderr=asyncio.subprocess.DEVNULL,
    )
    pids: list[int] = []
    try:
        pids = await eventually(lambda: _pids(address), 30, 0.1)
        first = _children(keeper.pid)
        assert len(first) == 1
        os.kill(first[0], signal.SIGKILL)  # healthd: the keeper's only child

        async def restarted() -> bool:
            now = _children(keeper.pid)
            return bool(now) and now != first and await _pids(address) == pids

        await eventually(restarted, 30, 0.1)
        # Kill healthd again and stop the keeper before it restarts healthd (0.5 s backoff).
        os.kill(_children(keeper.pid)[0], signal.SIGKILL)
        await asyncio.sleep(0.1)
        keeper.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(keeper.wait(), 30) == 0
        assert_no_pid(pids)
        assert not list((tmp_path / "run").glob("*.json"))
    finally:
        if keeper.returncode is None:
            keeper.kill()
            await keeper.wait()
        for pid in pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


async def test_keep_does_not_retry_a_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "healthd.yaml"
    path.write_text("components: 3\n")
    code, _, err = await run_healthd("keep", "--config", str(path))
    assert code == 2 and "config error" in err
