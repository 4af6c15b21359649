"""Space is a resource the SQLite run store manages: below the free-space reserve new runs
are refused (RESOURCE_EXHAUSTED with a retry delay) while accepted runs finish; when idle the
writer truncates the WAL and keeps pages pre-allocated inside the file."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from services.common import ConfigError, ResourceExhausted, load_config
from services.workflow._config import StoreSpaceConfig, WorkflowConfig
from services.workflow._model import RunChange, canonical_json
from services.workflow._sqlite_store import SQLiteRunStore
from services.workflow._states import RunState
from tests.conftest import eventually
from tests.unit.workflow.store_suite import new_run

# A reserve no test volume has free: the store is "low" from the start.
UNREACHABLE = StoreSpaceConfig(reserve_mb=1 << 20, retry_after_s=7.0)


async def _store(path: Path, space: StoreSpaceConfig) -> SQLiteRunStore:
    store = SQLiteRunStore(path, clock=lambda: 1000.0, synchronous="NORMAL", space=space)
    await store.open()
    return store


async def test_below_the_reserve_new_runs_are_refused_and_accepted_ones_finish(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    roomy = await _store(path, StoreSpaceConfig(reserve_mb=0))
    accepted, _ = await roomy.create_run(new_run(idempotency_key="k", lease_owner="r1", lease_expires=2e3))
    await roomy.close()
    low = await _store(path, UNREACHABLE)
    try:
        assert low.space.sample().low
        with pytest.raises(ResourceExhausted, match="low on space") as refused:
            await low.create_run(new_run())
        assert refused.value.retry_after_s == 7.0
        # A retry of the accepted run is answered with it (the client must learn its run id)...
        again, created = await low.create_run(new_run(idempotency_key="k"))
        assert (again.run_id, created) == (accepted.run_id, False)
        # ...and the accepted run still writes its steps and its end.
        lease = accepted.lease
        assert await low.begin_step(accepted.run_id, "s", lease) == 1
        await low.record_step(accepted.run_id, "s", canonical_json({"ok": True}), lease)
        await low.update_run(accepted.run_id, RunChange(RunState.RUNNING, attempt=True), lease)
        done = await low.update_run(accepted.run_id, RunChange(RunState.SUCCEEDED, result=1), lease)
        assert done.state is RunState.SUCCEEDED
    finally:
        await low.close()


async def test_idle_writer_truncates_the_wal_and_keeps_pages_allocated(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = await _store(path, StoreSpaceConfig(reserve_mb=0, preallocate_mb=0.5))
    try:
        for _ in range(50):
            await store.create_run(new_run(params={"pad": "x" * 2000}))
        wal = Path(f"{path}-wal")

        def free_pages() -> int:
            with sqlite3.connect(path) as conn:
                return int(conn.execute("PRAGMA freelist_count").fetchone()[0])

        def settled() -> bool:  # truncated after the top-up (housekeeping truncates twice)
            return free_pages() * 4096 >= 0.5 * (1 << 20) - 16 * 4096 and wal.stat().st_size == 0

        await eventually(settled, timeout=15)
        # Rows written now reuse those pages: the file does not grow for them.
        size = os.stat(path).st_size
        for _ in range(20):
            await store.create_run(new_run(params={"pad": "y" * 2000}))
        await eventually(lambda: wal.stat().st_size == 0, timeout=15)
        assert os.stat(path).st_size <= size + 64 * 4096  # grew by the top-up at most
    finally:
        await store.close()


def test_space_settings_are_validated_where_the_config_is_loaded(tmp_path: Path) -> None:
    bad = tmp_path / "workflow.yaml"
    bad.write_text("store_space: {reserve_mb: -1}\n")
    with pytest.raises(ConfigError, match=r"store_space\.reserve_mb"):
        load_config(WorkflowConfig, bad)
    assert WorkflowConfig().store_space == StoreSpaceConfig(reserve_mb=64, wal_limit_mb=8, preallocate_mb=1)
