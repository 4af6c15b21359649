from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from services.common import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from services.workflow._bulkhead import Bulkhead
from services.workflow._model import ErrorCategory
from services.workflow._policies import (
    BreakerOpen,
    BreakerState,
    CircuitBreaker,
    RetryPolicy,
    categorize,
    counts_against_breaker,
    with_deadline,
)
from tests.clock import FakeClock


class Failing:
    """Fault injector: raises ``exc`` for the first ``times`` calls, then returns ``"ok"``."""

    def __init__(self, times: int, exc: BaseException | None = None) -> None:
        self.times, self.exc, self.calls = times, exc or RuntimeError("boom"), 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.exc
        return "ok"


@pytest.mark.parametrize(
    ("exc", "category"),
    [
        (asyncio.CancelledError(), ErrorCategory.CANCELLED),
        (TimeoutError(), ErrorCategory.TIMEOUT),
        (InvalidArgument("x"), ErrorCategory.VALIDATION),
        (PermissionDenied("x"), ErrorCategory.AUTH),
        (Unavailable("x"), ErrorCategory.DEPENDENCY),
        (BreakerOpen("b", 1.0), ErrorCategory.DEPENDENCY),
        (ResourceExhausted("x"), ErrorCategory.RESOURCE),
        (MemoryError(), ErrorCategory.RESOURCE),
        (ValueError("x"), ErrorCategory.HANDLER),
    ],
)
def test_categorize(exc: BaseException, category: ErrorCategory) -> None:
    assert categorize(exc) is category


class TestRetry:
    async def test_retries_until_success_with_jittered_backoff(self) -> None:
        clock, fn = FakeClock(sleep_advances=True), Failing(2)
        policy = RetryPolicy(max_attempts=5, initial_backoff_s=1.0, max_backoff_s=3.0)
        assert await policy.call(fn, clock=clock, sleep=clock.sleep, rng=random.Random(7)) == "ok"
        assert fn.calls == 3
        assert len(clock.slept) == 2
        assert 0 <= clock.slept[0] <= 1.0 and 0 <= clock.slept[1] <= 2.0

    async def test_backoff_cap_grows_exponentially_to_max(self) -> None:
        p = RetryPolicy(initial_backoff_s=0.5, max_backoff_s=3.0)
        assert [p.backoff_cap(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]

    async def test_gives_up_after_max_attempts_with_last_error(self) -> None:
        clock, fn = FakeClock(sleep_advances=True), Failing(10)
        with pytest.raises(RuntimeError, match="boom"):
            await RetryPolicy(max_attempts=3).call(fn, clock=clock, sleep=clock.sleep)
        assert fn.calls == 3

    async def test_deadline_bounds_retries(self) -> None:
        clock, fn = FakeClock(sleep_advances=True), Failing(100)
        policy = RetryPolicy(max_attempts=1000, initial_backoff_s=1.0, max_backoff_s=1.0)
        with pytest.raises(RuntimeError):
            await policy.call(
                fn, deadline=clock() + 5.0, clock=clock, sleep=clock.sleep, rng=random.Random(1)
            )
        assert clock.now <= 1005.0
        assert 2 <= fn.calls < 1000

    @pytest.mark.parametrize("exc", [InvalidArgument("bad"), PermissionDenied("no"), BreakerOpen("b", 1)])
    async def test_validation_auth_and_open_breaker_are_not_retried(self, exc: BaseException) -> None:
        clock, fn = FakeClock(sleep_advances=True), Failing(5, exc)
        with pytest.raises(type(exc)):
            await RetryPolicy(max_attempts=5).call(fn, clock=clock, sleep=clock.sleep)
        assert fn.calls == 1


class TestBreaker:
    def make(self, clock: FakeClock) -> CircuitBreaker:
        return CircuitBreaker(
            "wf", clock, window_s=10, min_calls=4, failure_rate=0.5, open_s=5, half_open_probes=2
        )

    async def test_opens_on_failure_rate_only_after_min_calls(self) -> None:
        clock = FakeClock(sleep_advances=True)
        b = self.make(clock)
        for _ in range(3):
            with pytest.raises(RuntimeError):
                await b.call(Failing(1))
        assert b.state is BreakerState.CLOSED  # 3 < min_calls
        with pytest.raises(RuntimeError):
            await b.call(Failing(1))
        assert b.state is BreakerState.OPEN

    async def test_rate_below_threshold_stays_closed(self) -> None:
        clock = FakeClock(sleep_advances=True)
        b = self.make(clock)
        for i in range(10):
            fn = Failing(1 if i % 4 == 0 else 0)  # 25% < 50%
            with contextlib.suppress(RuntimeError):
                await b.call(fn)
        assert b.state is BreakerState.CLOSED

    async def test_old_outcomes_slide_out_of_the_window(self) -> None:
        clock = FakeClock(sleep_advances=True)
        b = self.make(clock)
        for _ in range(3):
            with pytest.raises(RuntimeError):
                await b.call(Failing(1))
        clock.advance(11)
        with pytest.raises(RuntimeError):
            await b.call(Failing(1))
        assert b.state is BreakerState.CLOSED

    async def open_breaker(self, b: CircuitBreaker) -> None:
        for _ in range(4):
            with pytest.raises(RuntimeError):
                await b.call(Failing(1))
        assert b.state is BreakerState.OPEN

    async def test_open_sheds_without_calling(self) -> None:
        clock = FakeClock(sleep_advances=True)
        b = self.make(clock)
        await self.open_breaker(b)
        fn = Failing(0)
        with pytest.raises(BreakerOpen) as info:
            await b.call(fn)
        assert fn.calls == 0 and info.value.retry_after_s == pytest.approx(5)

    async def test_half_open_limits_probes_then_closes(self) -> None:
        clock = FakeClock(sleep_advances=True)
        b = self.make(clock)
        await self.open_breaker(b)
        clock.advance(5)
        gate = asyncio.Event()

        async def slow() -> str:
            await gate.wait()
            return "ok"

        probes = [asyncio.create_task(b.call(slow)) for _ in range(2)]
        await asyncio.sleep(0)
        assert b.state is BreakerState.HALF_OPEN
        with pytest.raises(BreakerOpen):  # third concurrent call: over the probe limit
            await b.call(slow)
        gate.set()
        assert await asyncio.gather(*probes) == ["ok", "ok"]
        assert b.state is BreakerState.CLOSED

    async def test_failed_probe_reopens(self) -> None:
        clock = FakeClock(sleep_advances=True)
        b = self.make(clock)
        await self.open_breaker(b)
        clock.advance(5)
        with pytest.raises(RuntimeError):
            await b.call(Failing(1))
        assert b.state is BreakerState.OPEN

    async def test_verdicts_never_count(self) -> None:
        clock = FakeClock(sleep_advances=True)
        b = self.make(clock)
        verdicts = [
            InvalidArgument("x"),
            PermissionDenied("y"),
            NotFound("no such file"),
            Unauthenticated("bad token"),
            AlreadyExists("key reused"),
            FailedPrecondition("digest mismatch"),
        ]
        for exc in verdicts * 5:
            with pytest.raises(type(exc)):
                await b.call(Failing(1, exc))
        assert b.state is BreakerState.CLOSED


@pytest.mark.parametrize(
    ("exc", "counts"),
    [
        (Unavailable("down"), True),
        (DeadlineExceeded("slow"), True),
        (TimeoutError(), True),
        (ConnectionRefusedError(), True),
        (RuntimeError("handler crashed"), True),
        (ResourceExhausted("transport: message too large", advised=False), True),
        (ResourceExhausted("the caller's rate limit", retry_after_s=2.0), False),
        (NotFound("no such file"), False),
        (InvalidArgument("bad"), False),
        (PermissionDenied("no"), False),
        (Unauthenticated("who"), False),
        (AlreadyExists("dup"), False),
        (FailedPrecondition("state"), False),
        (asyncio.CancelledError(), False),
    ],
)
def test_breakers_count_failures_not_verdicts(exc: BaseException, counts: bool) -> None:
    assert counts_against_breaker(exc) is counts

    async def test_on_change_reports_transitions(self) -> None:
        clock, seen = FakeClock(sleep_advances=True), []
        b = self.make(clock)
        b.on_change = lambda name, state: seen.append((name, state))
        await self.open_breaker(b)
        assert seen == [("wf", BreakerState.OPEN)]


class TestBulkhead:
    async def test_sheds_beyond_concurrency_plus_queue(self) -> None:
        bh = Bulkhead("wf", max_concurrent=2, max_queue=1, retry_after_s=0.5)
        for _ in range(3):
            bh.reserve()
        with pytest.raises(ResourceExhausted) as info:
            bh.reserve()
        assert info.value.retry_after_s == 0.5
        bh.reserve(force=True)  # resumed runs are never shed
        bh.release()
        bh.release()
        bh.reserve()

    async def test_slot_limits_concurrency(self) -> None:
        bh = Bulkhead("wf", max_concurrent=2, max_queue=10)
        active, peak = 0, 0

        async def work() -> None:
            nonlocal active, peak
            async with bh.slot():
                active += 1
                peak = max(peak, active)
                await asyncio.sleep(0.001)
                active -= 1

        await asyncio.gather(*(work() for _ in range(8)))
        assert peak == 2


async def test_with_deadline_cancels_late_work() -> None:
    clock = FakeClock(sleep_advances=True)
    with pytest.raises(TimeoutError):
        await with_deadline(lambda: asyncio.sleep(10), clock() + 0.01, clock)
    with pytest.raises(TimeoutError):
        await with_deadline(lambda: asyncio.sleep(0), clock() - 1, clock)
    assert await with_deadline(lambda: asyncio.sleep(0, "v"), None, clock) == "v"


async def test_bulkhead_hands_freed_slots_to_the_highest_priority_first() -> None:
    bh = Bulkhead("wf", max_concurrent=1, max_queue=10)
    order: list[str] = []
    gate = asyncio.Event()

    async def run(name: str, priority: int) -> None:
        async with bh.slot(priority):
            order.append(name)
            if name == "first":
                await gate.wait()

    first = asyncio.create_task(run("first", 0))
    await asyncio.sleep(0)
    waiting = [
        asyncio.create_task(run(n, p))
        for n, p in [("low", -5), ("normal-a", 0), ("high", 9), ("normal-b", 0)]
    ]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, *waiting)
    assert order == ["first", "high", "normal-a", "normal-b", "low"]
    assert bh.running == 0


async def test_cancelled_waiter_leaves_the_queue_and_slots_are_not_lost() -> None:
    bh = Bulkhead("wf", max_concurrent=1, max_queue=10)
    gate = asyncio.Event()

    async def hold() -> None:
        async with bh.slot():
            await gate.wait()

    async def wait_slot() -> None:
        async with bh.slot():
            pass

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(wait_slot())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    gate.set()
    await holder
    assert bh.running == 0
    await asyncio.wait_for(wait_slot(), 1)  # the slot is free again
