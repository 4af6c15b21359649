"""Lease fencing between two workflow replicas (executors) sharing one PostgreSQL.

Replica A starts a run, then loses the database (modelled by its lease-renewal loop not
running) for longer than ``lease_s``. Replica B claims the expired lease and resumes the
run. When A reconnects, its next renewal learns that the lease is gone and A stops its
own execution of the run, recording why; the run finishes once, on B.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from services.workflow._context import RunContext
from services.workflow._executor import Executor
from services.workflow._model import NewRun, Run
from services.workflow._pg_config import PostgresConfig
from services.workflow._pg_store import PostgresRunStore
from services.workflow._registry import WorkflowRegistry
from services.workflow._states import RunState
from tests.conftest import eventually

LEASE_S = 1.0


@pytest.fixture
async def stores(postgres_dsn: str) -> AsyncIterator[tuple[PostgresRunStore, PostgresRunStore]]:
    pair = (
        PostgresRunStore(PostgresConfig(dsn=postgres_dsn), clock=time.time),
        PostgresRunStore(PostgresConfig(dsn=postgres_dsn), clock=time.time),
    )
    for s in pair:
        await s.open()
    yield pair
    for s in pair:
        await s.close()


def _executor(
    store: PostgresRunStore, registry: WorkflowRegistry, owner: str, clock: Callable[[], float]
) -> Executor:
    return Executor(
        store=store,
        registry=registry,
        owner=owner,
        clock=clock,
        monotonic=time.monotonic,
        lease_s=LEASE_S,
        poll_s=0.05,
    )


async def test_replica_that_lost_its_lease_stops_the_run_the_other_took_over(
    stores: tuple[PostgresRunStore, PostgresRunStore],
) -> None:
    started: list[int] = []
    stopped: list[int] = []
    finished: list[int] = []
    gate = asyncio.Event()

    async def blocking(ctx: RunContext) -> Any:
        started.append(ctx.attempt)
        try:
            await gate.wait()
        except asyncio.CancelledError:
            stopped.append(ctx.attempt)
            raise
        finished.append(ctx.attempt)
        return {"attempt": ctx.attempt}

    registry = WorkflowRegistry()
    registry.register("blocking", blocking)
    store_a, store_b = stores
    a = _executor(store_a, registry, "replica-a", time.time)
    # B's clock runs ahead by more than a lease: A's lease has expired from B's point of view
    # at once, as it would after A had been cut off from the database for that long.
    b = _executor(store_b, registry, "replica-b", lambda: time.time() + 5 * LEASE_S)

    owner, expires = a.lease()
    run, _ = await store_a.create_run(
        NewRun(
            uuid.uuid4().hex,
            "blocking",
            {},
            "alice",
            0,
            time.time(),
            lease_owner=owner,
            lease_expires=expires,
        )
    )
    a.dispatch(run)  # A executes it; A's renewal loop is not running (cut off)
    await eventually(lambda: started == [1])

    await b.start()  # claims the run whose lease expired and resumes it
    try:
        await eventually(lambda: started == [1, 2])
        assert (await store_b.get_run(run.run_id)).lease_owner == "replica-b"

        await a.start()  # A reconnects: its renewal finds the lease gone and stops the run
        try:
            await eventually(lambda: stopped == [1], timeout=10)
            assert a.stats_of("blocking").lease_lost == 1
            assert b.stats_of("blocking").lease_lost == 0
            # A left the run alone: still B's, still running, not cancelled by A.
            current = await store_a.get_run(run.run_id)
            assert (current.state, current.lease_owner) == (RunState.RUNNING, "replica-b")

            gate.set()

            async def done() -> Run | None:
                r = await store_a.get_run(run.run_id)
                return r if r.terminal else None

            final = await eventually(done, timeout=10)
        finally:
            await a.stop()
    finally:
        await b.stop()
    assert final.state is RunState.SUCCEEDED and final.result == {"attempt": 2}
    assert finished == [2]  # executed to the end once, by B
