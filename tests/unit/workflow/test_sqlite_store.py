from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.common import Unavailable
from services.workflow._model import RunQuery
from services.workflow._sqlite_store import SQLiteRunStore
from tests.unit.workflow.fencing_suite import FencingSuite
from tests.unit.workflow.history_suite import RunHistorySuite
from tests.unit.workflow.store_suite import RunStoreSuite, new_run


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteRunStore]:
    s = SQLiteRunStore(tmp_path / "runs.db", clock=lambda: 1000.0, synchronous="NORMAL")
    await s.open()
    yield s
    await s.close()


class TestSQLiteRunStore(RunStoreSuite, FencingSuite, RunHistorySuite):
    async def test_committed_before_create_returns(self, store: SQLiteRunStore, tmp_path: Path) -> None:
        new = new_run()
        await store.create_run(new)
        # An independent connection (another process after a crash) sees the run.
        with sqlite3.connect(tmp_path / "runs.db") as conn:
            assert conn.execute("SELECT state FROM runs WHERE run_id = ?", (new.run_id,)).fetchone() == (
                "PENDING",
            )

    async def test_wal_mode(self, store: SQLiteRunStore, tmp_path: Path) -> None:
        with sqlite3.connect(tmp_path / "runs.db") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)

    async def test_reopen_keeps_runs(self, tmp_path: Path) -> None:
        s = SQLiteRunStore(tmp_path / "r.db", clock=lambda: 1.0)
        await s.open()
        run, _ = await s.create_run(new_run())
        await s.close()
        s2 = SQLiteRunStore(tmp_path / "r.db", clock=lambda: 1.0)
        await s2.open()
        assert (await s2.get_run(run.run_id)).run_id == run.run_id
        await s2.close()

    async def test_many_concurrent_writes_all_commit(self, store: SQLiteRunStore) -> None:
        news = [new_run() for _ in range(300)]
        await asyncio.gather(*(store.create_run(n) for n in news))
        page = await store.list_runs(RunQuery(limit=1000))
        assert len(page.runs) == 300

    async def test_closed_store_refuses_work(self, tmp_path: Path) -> None:
        s = SQLiteRunStore(tmp_path / "c.db", clock=lambda: 1.0)
        await s.open()
        await s.close()
        with pytest.raises(Unavailable, match="closed"):
            await s.create_run(new_run())

    async def test_sqlite_failures_are_unavailable_and_the_writer_survives(self, tmp_path: Path) -> None:
        s = SQLiteRunStore(tmp_path / "f.db", clock=lambda: 1.0)
        await s.open()
        # Fault injector: a trigger makes every insert fail like a full disk would.
        with sqlite3.connect(tmp_path / "f.db") as conn:
            conn.execute(
                "CREATE TRIGGER fail BEFORE INSERT ON runs BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )
        with pytest.raises(Unavailable, match="disk full"):
            await s.create_run(new_run())
        with sqlite3.connect(tmp_path / "f.db") as conn:
            conn.execute("DROP TRIGGER fail")
        run, created = await s.create_run(new_run())  # the writer thread is still serving
        assert created and (await s.get_run(run.run_id)).run_id == run.run_id
        await s.close()
