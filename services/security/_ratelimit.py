"""Per-principal token buckets: ``RESOURCE_EXHAUSTED`` with a retry delay when a bucket is empty."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import Field

from services.common import ConfigModel, ResourceExhausted

__all__ = ["RateLimitConfig", "RateLimiter"]


class RateLimitConfig(ConfigModel):
    """Token-bucket limits applied per authenticated subject."""

    enabled: bool = True
    """Turn rate limiting off entirely (benchmarks, trusted test rigs)."""
    rate_per_s: float = Field(default=200.0, gt=0, le=1_000_000)
    """Sustained requests per second each subject may make."""
    burst: int = Field(default=400, ge=1, le=10_000_000)
    """Bucket size: requests a subject may make at once after being idle."""
    per_subject: dict[str, float] = {}
    """Overrides of ``rate_per_s`` by subject (burst scales with it)."""
    max_subjects: int = Field(default=100_000, ge=1, le=10_000_000)
    """Buckets kept in memory; the least recently used is dropped beyond it."""


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

    def _limits(self, subject: str) -> tuple[float, float]:
        cfg = self.config
        rate = cfg.per_subject.get(subject, cfg.rate_per_s)
        return rate, max(1.0, cfg.burst * rate / cfg.rate_per_s)

    def check(self, subject: str, cost: float = 1.0) -> None:
        """Take ``cost`` tokens from ``subject``'s bucket or raise `ResourceExhausted` with the wait."""
        if not self.config.enabled:
            return
        rate, burst = self._limits(subject)
        now = self._now()
        bucket = self._buckets.get(subject)
        if bucket is None:
            bucket = _Bucket(burst, now)
            self._buckets[subject] = bucket
            if len(self._buckets) > self.config.max_subjects:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(subject)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return
        wait = (cost - bucket.tokens) / rate
        raise ResourceExhausted(
            f"rate limit exceeded for '{subject}'; retry in {wait:.2f}s", retry_after_s=wait
        )
