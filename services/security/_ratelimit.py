"""Per-principal token buckets: ``RESOURCE_EXHAUSTED`` with a retry delay when a bucket is empty.

Whose limit applies, first match wins:

1. the credential's own ``rate_limit`` (an API key entry's field, a JWT's ``vigil_rate_limit``
   claim), so each backend gets the rate it was provisioned for;
2. ``per_subject`` in the config;
3. principals holding a role in ``unlimited_roles`` (default ``service``: programs such as
   the workflow service's own key) are not limited;
4. the default ``rate_per_s``/``burst``. It is deliberately above what one security process
   can answer (1,000-2,000 Screens/s on 2 cores), so the default never caps a single backend
   below the service's own capacity; it bounds a runaway client on bigger machines. Set a
   lower ``rate_limit`` per key where tenants must share fairly.

Unauthenticated callers never reach these buckets: their slow (scrypt) key checks are
limited per key id (`ApiKeyVerifier`) and their audit records per peer (`_failaudit`).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from services.common import ConfigModel, ResourceExhausted

__all__ = ["UNLIMITED", "Rate", "RateLimitConfig", "RateLimiter", "parse_rate"]


@dataclass(frozen=True)
class Rate:
    """A sustained rate and a bucket size; ``UNLIMITED`` is never limited."""

    per_s: float
    burst: float

    @property
    def unlimited(self) -> bool:
        return math.isinf(self.per_s)


UNLIMITED = Rate(math.inf, math.inf)
_MAX_RATE = 1_000_000.0


def parse_rate(value: Any) -> Rate | None:
    """A credential's ``rate_limit``: None (not set), ``"unlimited"``, a number of requests
    per second (burst twice that), or ``{rate_per_s: N, burst: M}``.

    Raises:
        ValueError: naming what is accepted.
    """
    if value is None or isinstance(value, Rate):
        return value
    if isinstance(value, str) and value.strip().lower() == "unlimited":
        return UNLIMITED
    burst: Any = None
    if isinstance(value, dict) and set(value) <= {"rate_per_s", "burst"} and "rate_per_s" in value:
        value, burst = value["rate_per_s"], value.get("burst")
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= _MAX_RATE:
        per_s = float(value)
        if burst is None:
            return Rate(per_s, max(1.0, 2 * per_s))
        if isinstance(burst, int) and not isinstance(burst, bool) and 1 <= burst <= 10 * _MAX_RATE:
            return Rate(per_s, float(burst))
    raise ValueError(
        "rate_limit must be 'unlimited', requests per second (0 < N <= 1e6), "
        "or {rate_per_s: N, burst: M} with an integer burst >= 1"
    )


class RateLimitConfig(ConfigModel):
    """Token-bucket limits applied per authenticated subject (see the module docstring)."""

    enabled: bool = True
    """Turn rate limiting off entirely (trusted test rigs)."""
    rate_per_s: float = Field(default=5000.0, gt=0, le=_MAX_RATE)
    """Default sustained requests per second of a subject whose credential sets no limit."""
    burst: int = Field(default=10_000, ge=1, le=10_000_000)
    """Default bucket size: requests a subject may make at once after being idle."""
    per_subject: dict[str, float] = {}
    """Overrides of ``rate_per_s`` by subject (burst scales with it)."""
    unlimited_roles: frozenset[str] = frozenset({"service"})
    """Principals with any of these roles are not limited unless their credential sets a limit."""
    max_subjects: int = Field(default=100_000, ge=1, le=10_000_000)
    """Buckets kept in memory; the least recently used is dropped beyond it."""

    def rate_for(self, subject: str, roles: frozenset[str] = frozenset(), own: Rate | None = None) -> Rate:
        """The limit of a subject: its credential's, else per_subject, else unlimited roles, else default."""
        if own is not None:
            return own
        override = self.per_subject.get(subject)
        if override is not None:
            return Rate(override, max(1.0, self.burst * override / self.rate_per_s))
        if not roles.isdisjoint(self.unlimited_roles):
            return UNLIMITED
        return Rate(self.rate_per_s, float(self.burst))


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by subject. Not thread-safe: used from one event loop."""

    def __init__(self, config: RateLimitConfig, *, now: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._now = now
        # LRU order: a dropped bucket was idle longest and would be (nearly) full anyway.
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def check(self, subject: str, cost: float = 1.0, rate: Rate | None = None) -> None:
        """Take ``cost`` tokens from ``subject``'s bucket or raise `ResourceExhausted` with the wait.

        ``rate`` is the subject's limit (default: `RateLimitConfig.rate_for` the subject alone).
        """
        if not self.config.enabled:
            return
        rate = rate or self.config.rate_for(subject)
        if rate.unlimited:
            return
        now = self._now()
        bucket = self._buckets.get(subject)
        if bucket is None:
            bucket = _Bucket(rate.burst, now)
            self._buckets[subject] = bucket
            if len(self._buckets) > self.config.max_subjects:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(subject)
            bucket.tokens = min(rate.burst, bucket.tokens + (now - bucket.updated) * rate.per_s)
            bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return
        wait = (cost - bucket.tokens) / rate.per_s
        raise ResourceExhausted(
            f"rate limit exceeded for '{subject}'; retry in {wait:.2f}s", retry_after_s=wait
        )
