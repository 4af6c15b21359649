"""A real executor over a real SQLite store, with a fake monotonic clock, for executor tests."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from services.workflow._builtins import register_builtins
from services.workflow._executor import Executor
from services.workflow._isolation import ProcessPool
from services.workflow._model import NewRun, Run
from services.workflow._registry import WorkflowRegistry
from services.workflow._sqlite_store import SQLiteRunStore
from tests.clock import FakeClock

__all__ = ["Harness"]


class Harness:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.store = SQLiteRunStore(tmp / "runs.db", clock=time.time, synchronous="NORMAL")
        self.registry = WorkflowRegistry()
        register_builtins(self.registry)
        self.mono = FakeClock()
        self.pool = ProcessPool(1)
        self.executor = self.new_executor()

    def new_executor(self, owner: str = "test", lease_s: float = 30.0) -> Executor:
        return Executor(
            store=self.store,
            registry=self.registry,
            owner=owner,
            clock=time.time,
            monotonic=self.mono,
            pool=self.pool,
            lease_s=lease_s,
            poll_s=0.05,
        )

    async def start(self, workflow: str, params: Any = None, **kw: Any) -> Run:
        owner, expires = self.executor.lease()
        fields: dict[str, Any] = {
            "run_id": uuid.uuid4().hex,
            "workflow": workflow,
            "params": params if params is not None else {},
            "principal": "alice",
            "priority": 0,
            "created_at": time.time(),
            "lease_owner": owner,
            "lease_expires": expires,
        }
        fields.update(kw)
        run, _ = await self.store.create_run(NewRun(**fields))
        self.executor.dispatch(run)
        return run

    async def finish(self, workflow: str, params: Any = None, **kw: Any) -> Run:
        run = await self.start(workflow, params, **kw)
        return await self.executor.wait_terminal(run.run_id, within_s=10)
