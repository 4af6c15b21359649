"""Executor leases: a run whose replica died is taken over once its lease expires."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from services.workflow._context import RunContext
from services.workflow._model import NewRun, Run
from services.workflow._states import RunState
from tests.conftest import eventually
from tests.unit.workflow._harness import Harness


async def test_another_replica_takes_over_after_the_lease_expires(h: Harness) -> None:
    executed: list[str] = []
    gate = asyncio.Event()

    async def two_steps(ctx: RunContext) -> Any:
        await ctx.step("one", lambda: executed.append(f"one@{ctx.attempt}") or 1)
        await gate.wait()
        return await ctx.step("two", lambda: executed.append(f"two@{ctx.attempt}") or 2)

    h.registry.register("two_steps", two_steps)
    a = h.new_executor(owner="replica-a", lease_s=1.0)
    owner, expires = a.lease()
    run, _ = await h.store.create_run(
        NewRun(
            uuid.uuid4().hex,
            "two_steps",
            {},
            "alice",
            0,
            time.time(),
            lease_owner=owner,
            lease_expires=expires,
        )
    )
    a.dispatch(run)
    await eventually(lambda: executed == ["one@1"])
    await a.stop()  # replica A is gone; its lease on the run runs out within 1 s
    gate.set()
    b = h.new_executor(owner="replica-b", lease_s=1.0)
    await b.start()
    try:
        done = await eventually(lambda: _terminal(h, run.run_id), timeout=10)
    finally:
        await b.stop()
    assert done.state is RunState.SUCCEEDED and executed == ["one@1", "two@2"]
    assert done.attempts == 2  # B resumed A's run: step "one" was not executed again


async def _terminal(h: Harness, run_id: str) -> Run | None:
    run = await h.store.get_run(run_id)
    return run if run.terminal else None
