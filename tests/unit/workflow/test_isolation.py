from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.workflow._isolation import HandlerFailed, ProcessPool, ResourceLimitExceeded
from services.workflow._model import ErrorCategory
from services.workflow._policies import categorize
from tests.conftest import eventually

REF = "tests.unit.workflow.process_handlers:"


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPool]:
    # One pool for the module: starting worker processes is the slow part of these tests.
    p = ProcessPool(workers=2)
    yield p
    p.shutdown()


async def test_runs_in_another_process(pool: ProcessPool) -> None:
    out = await pool.run(REF + "add", {"a": 2, "b": 3}, cpu_time_s=5, memory_mb=64)
    assert out["sum"] == 5 and out["pid"] != os.getpid()


async def test_cpu_limit_fails_with_resource_category_and_loop_stays_free(pool: ProcessPool) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    t = asyncio.create_task(ticker())
    start = time.monotonic()
    with pytest.raises(ResourceLimitExceeded, match="CPU time limit of 1s") as info:
        await pool.run(REF + "burn", {}, cpu_time_s=1, memory_mb=64)
    t.cancel()
    assert categorize(info.value) is ErrorCategory.RESOURCE
    assert ticks > 10 * (time.monotonic() - start) * 0.5  # the loop kept ticking meanwhile
    # The worker survived and its limits were reset: it runs the next task normally.
    assert (await pool.run(REF + "add", {"a": 1, "b": 1}, cpu_time_s=5, memory_mb=64))["sum"] == 2


async def test_memory_limit(pool: ProcessPool) -> None:
    with pytest.raises(ResourceLimitExceeded, match="memory limit of 64 MB"):
        await pool.run(REF + "hog", {"blocks": 100}, cpu_time_s=5, memory_mb=64)
    assert await pool.run(REF + "hog", {"blocks": 1}, cpu_time_s=5, memory_mb=64) == 1


async def test_handler_error_comes_back_as_text(pool: ProcessPool) -> None:
    with pytest.raises(HandlerFailed, match="KeyError"):
        await pool.run(REF + "boom", {}, cpu_time_s=5, memory_mb=64)


async def test_dead_worker_fails_the_attempt_and_pool_recovers(pool: ProcessPool) -> None:
    with pytest.raises(ResourceLimitExceeded, match="died"):
        await pool.run(REF + "die", {}, cpu_time_s=5, memory_mb=64)
    assert (await pool.run(REF + "add", {"a": 1, "b": 2}, cpu_time_s=5, memory_mb=64))["sum"] == 3


async def test_shutdown_does_not_wait_for_a_busy_worker(tmp_path: Path) -> None:
    pool = ProcessPool(workers=1)
    marker = tmp_path / "started"
    params = {"started_file": str(marker)}
    busy = asyncio.ensure_future(pool.run(REF + "burn", params, cpu_time_s=60, memory_mb=64))
    await eventually(marker.exists, timeout=10)
    busy.cancel()
    start = time.monotonic()
    await pool.close()
    assert time.monotonic() - start < 5
