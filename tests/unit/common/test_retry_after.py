"""RetryAfter waits out RESOURCE_EXHAUSTED refusals as told, within its bounds, and no others."""

from __future__ import annotations

import time

import pytest

from services.common import ResourceExhausted, RetryAfter, Unavailable


class Refuser:
    """Refuses the first ``n`` calls with ``retry_after_s``, then answers "ok"."""

    def __init__(self, n: int, retry_after_s: float = 0.05, *, advised: bool = True) -> None:
        self.n, self.delay, self.advised = n, retry_after_s, advised
        self.calls: list[float] = []

    async def __call__(self) -> str:
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.n:
            raise ResourceExhausted("slow down", retry_after_s=self.delay, advised=self.advised)
        return "ok"


async def test_waits_the_delay_then_retries() -> None:
    call = Refuser(2, 0.05)
    assert await RetryAfter(max_attempts=3).call(call) == "ok"
    assert len(call.calls) == 3
    gaps = [b - a for a, b in zip(call.calls, call.calls[1:], strict=False)]
    assert all(gap >= 0.05 for gap in gaps)  # never sooner than the server asked


async def test_bounded_by_attempts_and_by_waiting() -> None:
    call = Refuser(5, 0.01)
    with pytest.raises(ResourceExhausted):
        await RetryAfter(max_attempts=3).call(call)
    assert len(call.calls) == 3
    far = Refuser(1, 10.0)  # a delay beyond the budget is not waited at all
    with pytest.raises(ResourceExhausted):
        await RetryAfter(max_wait_s=2.0).call(far)
    assert len(far.calls) == 1
    tight = Refuser(1, 0.5)
    with pytest.raises(ResourceExhausted):
        await RetryAfter(max_wait_s=2.0).call(tight, budget_s=0.1)  # the caller's deadline
    assert len(tight.calls) == 1


async def test_only_advised_refusals_are_retried() -> None:
    guess = Refuser(1, advised=False)  # RESOURCE_EXHAUSTED without RetryInfo (e.g. message too large)
    with pytest.raises(ResourceExhausted):
        await RetryAfter().call(guess)
    assert len(guess.calls) == 1

    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise Unavailable("no")

    with pytest.raises(Unavailable):
        await RetryAfter().call(down)
    assert calls == 1
