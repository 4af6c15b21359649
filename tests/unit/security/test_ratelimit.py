"""Token buckets with an injected clock: burst, refill, retry delay, whose limit applies."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.common import ResourceExhausted
from services.security import AuthConfig, KeyEntry, Level, Rate, RateLimitConfig, RateLimiter, SecurityConfig
from services.security._core import SecurityCore
from services.security._ratelimit import UNLIMITED, parse_rate
from tests.clock import FakeClock
from tests.unit.security._support import fast_key


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


def test_whose_limit_applies() -> None:
    cfg = RateLimitConfig(rate_per_s=100, burst=200, per_subject={"batch": 10})
    assert cfg.rate_for("alice") == Rate(100, 200)
    assert cfg.rate_for("batch") == Rate(10, 20)  # burst scales with the override
    assert cfg.rate_for("wf", frozenset({"service"})).unlimited  # service principals: unlimited
    own = Rate(3, 4)
    assert cfg.rate_for("wf", frozenset({"service"}), own) is own  # ... unless their credential says
    assert cfg.rate_for("batch", own=own) is own


def test_default_does_not_cap_a_backend_below_the_service() -> None:
    # One security process answers ~2,000 Screens/s on 2 cores (bench security.screen):
    # the default must let one backend use all of it, with room for bursts.
    cfg = RateLimitConfig()
    assert cfg.rate_per_s >= 2000 and cfg.burst >= 2 * 2000


def test_a_credential_limit_is_its_own_bucket() -> None:
    clock = FakeClock()
    rl = RateLimiter(RateLimitConfig(rate_per_s=1, burst=1), now=clock)
    for _ in range(1000):
        rl.check("svc", rate=UNLIMITED)
    assert "svc" not in rl._buckets  # unlimited subjects cost no bucket
    for _ in range(4):
        rl.check("tenant", rate=Rate(2, 4))
    with pytest.raises(ResourceExhausted) as exc:
        rl.check("tenant", rate=Rate(2, 4))
    assert exc.value.retry_after_s == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("unlimited", UNLIMITED),
        (" Unlimited ", UNLIMITED),
        (50, Rate(50, 100)),
        (0.2, Rate(0.2, 1)),
        ({"rate_per_s": 5, "burst": 7}, Rate(5, 7)),
        ({"rate_per_s": 5}, Rate(5, 10)),
    ],
)
def test_parse_rate(value: object, expected: Rate | None) -> None:
    assert parse_rate(value) == expected


@pytest.mark.parametrize(
    "value",
    [0, -1, True, "fast", 2e6, {"burst": 3}, {"rate_per_s": 5, "burst": 0}, {"rate_per_s": 1, "x": 1}],
)
def test_parse_rate_refuses(value: object) -> None:
    with pytest.raises(ValueError, match="rate_limit must be"):
        parse_rate(value)


def test_key_entry_rate_limit_round_trips_and_reaches_the_principal() -> None:
    _, entry = fast_key("tenant", Level.AUTHENTICATED)
    data = entry.model_dump(mode="json")
    for value in ("unlimited", {"rate_per_s": 5.0, "burst": 7}):
        loaded = KeyEntry.model_validate({**data, "rate_limit": value})
        assert loaded.model_dump(mode="json")["rate_limit"] == value
    with pytest.raises(ValidationError, match="rate_limit"):
        KeyEntry.model_validate({**data, "rate_limit": "lots"})


async def test_gate_applies_the_keys_own_limit(tmp_path: Path) -> None:
    slow_token, slow = fast_key("tenant", Level.AUTHENTICATED)
    slow = slow.model_copy(update={"rate_limit": Rate(0.01, 2)})
    svc_token, svc = fast_key("workflow", Level.ADMIN, ("service",))
    cfg = SecurityConfig(
        auth=AuthConfig(api_keys=(slow, svc)),
        audit={"db_path": tmp_path / "audit.db"},  # type: ignore[arg-type]
        rate_limit={"rate_per_s": 1, "burst": 3},  # type: ignore[arg-type]
    )
    core = SecurityCore.from_config(cfg)
    try:
        for _ in range(2):
            await core.gate.authenticate(slow_token, action="t")
        with pytest.raises(ResourceExhausted) as exc:
            await core.gate.authenticate(slow_token, action="t")
        assert exc.value.retry_after_s > 10  # the key's 0.01/s, not the config's 1/s
        for _ in range(20):  # the service role is unlimited although the config says 1/s
            await core.gate.authenticate(svc_token, action="t")
    finally:
        core.close()
