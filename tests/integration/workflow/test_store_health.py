"""grpc.health.v1 of the workflow service follows its run store: a real store made to fail
(here a full disk; PostgreSQL in tests/integration/postgres/test_pg_health.py) turns it NOT_SERVING,
and it turns SERVING again once the store recovers, as a held-open Watch sees."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common import Unavailable
from services.workflow._app import SERVICE_NAME, WorkflowApp
from services.workflow.client import pb
from tests.conftest import eventually
from tests.integration.workflow.conftest import SecurityEnv, StartWorkflow, client

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
FAST_PROBE = {"health_probe_s": 0.05, "health_probe_timeout_s": 2.0}


class Watcher:
    """Real Watch streams on "" and the service, recording every status they deliver."""

    def __init__(self, app: WorkflowApp) -> None:
        self.seen: dict[str, list[int]] = {"": [], SERVICE_NAME: []}
        self._channel = grpc.aio.insecure_channel(app.server.address)
        self._tasks = [asyncio.create_task(self._watch(name)) for name in self.seen]

    async def _watch(self, name: str) -> None:
        stub = health_pb2_grpc.HealthStub(self._channel)
        async for resp in stub.Watch(health_pb2.HealthCheckRequest(service=name)):
            self.seen[name].append(resp.status)

    def latest_is(self, status: int) -> bool:
        return all(s and s[-1] == status for s in self.seen.values())

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._channel.close()


@contextlib.asynccontextmanager
async def watching(app: WorkflowApp) -> AsyncIterator[Watcher]:
    w = Watcher(app)
    try:
        await eventually(lambda: w.latest_is(SERVING))
        yield w
    finally:
        await w.close()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a disk that really fills up."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; returns it (delete it to free the space)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


async def test_full_disk_turns_health_not_serving_until_space_returns(
    tiny_disk: Path, start_workflow: StartWorkflow, security: SecurityEnv
) -> None:
    # tiny_disk first: fixtures are torn down in reverse, so the server stops before the umount.
    # No free-space reserve: this is about a write that fails, not about refusing new runs early.
    app = await start_workflow(
        security.address, store_path=str(tiny_disk / "runs.db"), store_space={"reserve_mb": 0}, **FAST_PROBE
    )
    async with watching(app) as w, client(app, security.alice) as c:
        await c.start_run("echo", {"a": 1})
        filler = fill(tiny_disk)
        await eventually(lambda: w.latest_is(NOT_SERVING))
        with pytest.raises(Unavailable, match="run store"):  # what health now announces
            await c.start_run("echo", {"a": "x" * 8192})
        filler.unlink()
        await eventually(lambda: w.latest_is(SERVING))
        run, created = await c.start_run("echo", {"a": 2}, wait=True, timeout_s=10)
        assert created and run.state == pb.RUN_STATE_SUCCEEDED  # accepted and stored again
    assert NOT_SERVING in w.seen[""] and NOT_SERVING in w.seen[SERVICE_NAME]
