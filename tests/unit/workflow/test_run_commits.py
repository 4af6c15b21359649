"""How many store writes (each its own transaction) a run makes, and why it stays crash-safe.

A run StartRun creates while an execution slot is free is persisted with its first attempt
started (one write), then finished (one more): two in all. A run that has to queue for a
slot is created PENDING and counts its attempt once it gets one. Writes are counted on the
real SQLite store, by wrapping its write methods.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from services.workflow._context import RunContext
from services.workflow._history import HistoryType
from services.workflow._model import ErrorCategory, NewRun
from services.workflow._policies import INTERRUPT_GRACE, RetryPolicy
from services.workflow._policy_config import WorkflowPolicy
from services.workflow._runs import Operations, StartRequest
from services.workflow._states import RunState
from tests.conftest import eventually
from tests.unit.workflow._harness import Harness

WRITES = ("create_run", "update_run", "begin_step", "record_step", "fail_step", "append_event")


@pytest.fixture
def writes(h: Harness, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Store writes by method name (claims and renewals, which touch no run here, aside)."""
    counts: Counter[str] = Counter()

    def counted(name: str, write: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kw: Any) -> Any:
            counts[name] += 1
            return await write(*args, **kw)

        return call

    for name in WRITES:
        monkeypatch.setattr(h.store, name, counted(name, getattr(h.store, name)))
    return counts


async def test_an_echo_run_makes_two_writes(ops: Operations, writes: Counter[str], h: Harness) -> None:
    result = await ops.start(
        StartRequest(workflow="echo", params={"a": 1}, wait=True), token="t", remaining_s=10
    )
    assert result.run.state is RunState.SUCCEEDED and result.run.result == {"a": 1}
    assert writes == Counter(create_run=1, update_run=1)
    # What the executor answered (derived, not read back) is what the store holds.
    assert await h.store.get_run(result.run.run_id) == result.run
    history = await h.store.get_history(result.run.run_id)
    assert [(e.type, e.attempt) for e in history] == [
        (HistoryType.RUN_CREATED, 0),
        (HistoryType.ATTEMPT_STARTED, 1),
        (HistoryType.RUN_FINISHED, 1),
    ]


async def _idle(ctx: RunContext) -> None:
    await asyncio.Event().wait()


async def test_a_run_queued_for_a_slot_stays_pending_until_it_gets_one(
    ops: Operations, writes: Counter[str], h: Harness
) -> None:
    ops.registry.register("single", _idle, WorkflowPolicy(max_concurrency=1, max_queue=4))
    first = await ops.start(StartRequest(workflow="single"), token="t", remaining_s=10)
    queued = await ops.start(StartRequest(workflow="single"), token="t", remaining_s=10)
    assert (first.run.state, first.run.attempts) == (RunState.RUNNING, 1)
    assert (queued.run.state, queued.run.attempts) == (RunState.PENDING, 0)
    assert writes == Counter(create_run=2)  # the first one's attempt was counted as it was created
    await h.executor.cancel(first.run.run_id, "make room")

    async def running() -> bool:
        return (await h.store.get_run(queued.run.run_id)).state is RunState.RUNNING

    await eventually(running)
    assert (await h.store.get_run(queued.run.run_id)).attempts == 1
    await h.executor.cancel(queued.run.run_id, "done")


async def test_an_idempotent_replay_gives_its_slot_back(ops: Operations, h: Harness) -> None:
    ops.registry.register("single", _idle, WorkflowPolicy(max_concurrency=1, max_queue=4))
    req = StartRequest(workflow="single", idempotency_key="k")
    first = await ops.start(req, token="t", remaining_s=10)
    await h.executor.cancel(first.run.run_id, "end it")  # its slot is free again
    again = await ops.start(req, token="t", remaining_s=10)  # takes the free slot, then finds the run
    assert not again.created and again.run.run_id == first.run.run_id
    other = await ops.start(StartRequest(workflow="single"), token="t", remaining_s=10)
    assert other.run.state is RunState.RUNNING  # the replay's slot was given back, not kept
    await h.executor.cancel(other.run.run_id, "done")


async def test_a_crash_right_after_the_folded_create_still_counts_the_attempt(h: Harness) -> None:
    # The replica committed the run with its first attempt started and died before the
    # handler ran (nothing dispatched): on restart the attempt is counted, and the handler
    # sees attempt 2, so a crash-looping handler exhausts the count like any other attempt.
    owner, expires = h.executor.lease()
    new = NewRun(
        run_id=uuid.uuid4().hex,
        workflow="flaky",
        params={"failures": 1},
        principal="alice",
        priority=0,
        created_at=time.time(),
        lease_owner=owner,
        lease_expires=expires,
        started=True,
    )
    created, _ = await h.store.create_run(new)
    assert (created.state, created.attempts, created.started_at) == (RunState.RUNNING, 1, new.created_at)
    await h.executor.stop()
    restarted = h.new_executor()  # same owner: reclaims its own runs at once
    await restarted.start()
    try:
        done = await restarted.wait_terminal(new.run_id, within_s=10)
    finally:
        await restarted.stop()
    assert done.state is RunState.SUCCEEDED and done.result == {"attempts": 2}
    kinds = [(e.type, e.attempt) for e in await h.store.get_history(new.run_id)]
    assert kinds == [
        (HistoryType.RUN_CREATED, 0),
        (HistoryType.ATTEMPT_STARTED, 1),
        (HistoryType.ATTEMPT_STARTED, 2),
        (HistoryType.RUN_FINISHED, 2),
    ]


async def test_claims_leave_runs_being_created_alone(ops: Operations, h: Harness) -> None:
    # The harness claims every 50 ms. A claim that ran while a create was in flight used to
    # take the new run from its creator (epoch 2): the creator's execution then lost its
    # lease, and the run executed again. Now every run executes once, on its first lease.
    req = StartRequest(workflow="echo", params={"n": 1}, wait=True)

    async def caller() -> list[Any]:
        return [(await ops.start(req, token="t", remaining_s=10)).run for _ in range(25)]

    runs = [run for batch in await asyncio.gather(*(caller() for _ in range(16))) for run in batch]
    assert all(r.state is RunState.SUCCEEDED and r.attempts == 1 for r in runs)
    assert h.executor.stats_of("echo").lease_lost == 0


async def test_a_handler_that_ends_the_process_each_time_is_not_resumed_forever(h: Harness) -> None:
    # Each execution is interrupted inside the handler (as a crash or a shutdown would): its
    # attempt was counted durably, so after max_attempts + INTERRUPT_GRACE interruptions the
    # next execution fails the run instead of calling the handler again.
    entered: list[int] = []

    async def ends_the_process(ctx: RunContext) -> None:
        entered.append(ctx.attempt)
        await asyncio.Event().wait()

    h.registry.register("poison", ends_the_process, WorkflowPolicy())
    run = await h.start("poison")
    budget = WorkflowPolicy().retry.max_attempts + INTERRUPT_GRACE
    executor = h.executor
    for n in range(1, budget + 1):
        await eventually(lambda n=n: len(entered) == n)  # type: ignore[misc]
        await executor.stop()  # interrupted: nothing written, the run stays RUNNING
        executor = h.new_executor()
        await executor.start()
    try:
        done = await executor.wait_terminal(run.run_id, within_s=10)
    finally:
        await executor.stop()
    assert entered == list(range(1, budget + 1))  # never called again once the budget is spent
    assert done.state is RunState.FAILED and done.error is not None
    assert done.error.category is ErrorCategory.HANDLER and "none finished" in done.error.message


def test_a_resumed_run_gets_what_is_left_of_its_attempts() -> None:
    retry = RetryPolicy(max_attempts=3)
    assert retry.resumed(0) is retry and retry.resumed(INTERRUPT_GRACE) is retry
    left = retry.resumed(INTERRUPT_GRACE + 2)
    assert left is not None and left.max_attempts == 1
    assert retry.resumed(3 + INTERRUPT_GRACE) is None
