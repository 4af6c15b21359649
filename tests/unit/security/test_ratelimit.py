"""Token buckets with an injected clock: burst, refill, retry delay, per-subject overrides."""

from __future__ import annotations

import pytest

from services.common import ResourceExhausted
from services.security import RateLimitConfig, RateLimiter
from tests.clock import FakeClock


def test_burst_then_refill_with_retry_delay() -> None:
    clock = FakeClock()
    rl = RateLimiter(RateLimitConfig(rate_per_s=2, burst=3), now=clock)
    for _ in range(3):
        rl.check("alice")
    with pytest.raises(ResourceExhausted) as exc:
        rl.check("alice")
    assert exc.value.retry_after_s == pytest.approx(0.5)
    rl.check("bob")  # buckets are per subject
    clock.advance(0.5)
    rl.check("alice")
    with pytest.raises(ResourceExhausted):
        rl.check("alice")
    clock.advance(100)  # refill is capped at burst
    for _ in range(3):
        rl.check("alice")
    with pytest.raises(ResourceExhausted):
        rl.check("alice")


def test_overrides_disable_and_bounded_memory() -> None:
    clock = FakeClock()
    rl = RateLimiter(
        RateLimitConfig(rate_per_s=1, burst=1, per_subject={"batch": 10}, max_subjects=2), now=clock
    )
    for _ in range(10):
        rl.check("batch")
    for name in ("a", "b", "c"):
        rl.check(name)
    assert len(rl._buckets) == 2
    off = RateLimiter(RateLimitConfig(enabled=False, rate_per_s=1, burst=1), now=clock)
    for _ in range(100):
        off.check("x")
