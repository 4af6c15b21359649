"""Executor leases: a run whose replica died is taken over once its lease expires."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import pytest

from services.workflow._context import RunContext
from services.workflow._executor import Executor
from services.workflow._model import NewRun, Run
from services.workflow._sqlite_store import SQLiteRunStore
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


async def _start(h: Harness, executor: Executor, workflow: str) -> Run:
    owner, expires = executor.lease()
    run, _ = await h.store.create_run(
        NewRun(
            uuid.uuid4().hex, workflow, {}, "alice", 0, time.time(), lease_owner=owner, lease_expires=expires
        )
    )
    executor.dispatch(run)
    return run


async def _terminal(h: Harness, run_id: str) -> Run | None:
    run = await h.store.get_run(run_id)
    return run if run.terminal else None


async def test_a_replica_whose_lease_moved_writes_nothing_and_starts_no_step(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Two replicas on one SQLite file (two connections, as two processes have): A is cut off
    (its renewal loop never runs) while B, whose clock is a lease ahead, takes the run over.
    A's step body ends after the takeover: its result is refused, A stops ("lease lost") and
    never starts the next step; B's executions are the ones recorded."""
    starts: list[tuple[str, int]] = []
    gate = asyncio.Event()

    async def two_steps(ctx: RunContext) -> Any:
        async def one() -> int:
            starts.append(("one", ctx.fencing_token))
            await gate.wait()
            return ctx.fencing_token

        await ctx.step("one", one)
        return await ctx.step("two", lambda: starts.append(("two", ctx.fencing_token)) or 2)

    h.registry.register("two_steps", two_steps)
    a = h.new_executor(owner="replica-a", lease_s=1.0)
    b_store = SQLiteRunStore(h.tmp / "runs.db", clock=lambda: time.time() + 5.0, synchronous="NORMAL")
    await b_store.open()
    b = Executor(
        store=b_store,
        registry=h.registry,
        owner="replica-b",
        clock=lambda: time.time() + 5.0,
        monotonic=time.monotonic,
        lease_s=1.0,
        poll_s=0.05,
    )
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
    await eventually(lambda: starts == [("one", 1)])
    await b.start()
    try:
        await eventually(lambda: starts == [("one", 1), ("one", 2)])
        caplog.set_level(logging.WARNING, logger="services.workflow._executor")
        gate.set()  # both bodies end; A's result comes from a lease that moved
        done = await eventually(lambda: _terminal(h, run.run_id), timeout=10)
        await eventually(lambda: a.stats_of("two_steps").lease_lost == 1)
    finally:
        await b.stop()
        await a.stop()
        await b_store.close()
    assert starts == [("one", 1), ("one", 2), ("two", 2)]  # A never started step two
    assert done.state is RunState.SUCCEEDED and done.result == 2
    steps = {s.name: s for s in await h.store.get_steps(run.run_id)}
    assert steps["one"].result == 2 and steps["one"].executions == 2  # B's result; both starts counted
    assert steps["two"].executions == 1
    assert any("lease lost" in r.getMessage() and run.run_id in r.getMessage() for r in caplog.records)


async def test_a_lease_not_renewed_for_lease_s_stops_the_execution(h: Harness) -> None:
    """The store cannot take the renewal (closed here, as when the disk or database is gone):
    once the lease was last confirmed ``lease_s`` ago the run stops at its next await."""
    running, stopped = asyncio.Event(), asyncio.Event()

    async def forever(ctx: RunContext) -> Any:
        running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped.set()
            raise

    h.registry.register("forever", forever)
    a = h.new_executor(owner="replica-a", lease_s=3.0)
    await _start(h, a, "forever")
    await asyncio.wait_for(running.wait(), 10)  # its own writes are done: RUNNING is stored
    await h.store.close()  # every write is refused from now on
    await a.start()  # renews every lease_s / 3 (1 s); the monotonic clock is the test's
    try:
        await asyncio.sleep(1.5)  # a renewal failed, but the lease is younger than lease_s
        assert not stopped.is_set()
        h.mono.advance(3.0)
        await asyncio.wait_for(stopped.wait(), 5)
        await eventually(lambda: a.stats_of("forever").lease_lost == 1)
    finally:
        await a.stop()
