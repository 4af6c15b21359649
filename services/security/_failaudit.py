"""How many failed-authentication records an unauthenticated crowd may write.

Anyone who can reach the port can fail to authenticate, and each failure used to be one
audit record: an unbounded, attacker-driven growth of the log. Failure records are now
admitted by token buckets per peer and globally; the refusal itself always happens, and
the failures that were not recorded one by one are counted and written periodically as
one "N more failures" record, so the log still accounts for every one of them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from pydantic import Field

from services.common import ConfigModel, ResourceExhausted
from services.security._ratelimit import RateLimitConfig, RateLimiter

__all__ = ["FailureAuditConfig", "FailureAuditLimiter"]

_OTHER = "(other peers)"


class FailureAuditConfig(ConfigModel):
    """Bounds on audit records written for failed authentications (the refusals are not bounded)."""

    per_peer_per_s: float = Field(default=1.0, gt=0, le=1_000_000)
    """Failure records per second each peer address may cause."""
    per_peer_burst: int = Field(default=20, ge=1, le=1_000_000)
    """Failure records a peer may cause at once after being quiet."""
    global_per_s: float = Field(default=50.0, gt=0, le=1_000_000)
    """Failure records per second over all peers."""
    global_burst: int = Field(default=500, ge=1, le=10_000_000)
    """Failure records at once over all peers."""
    summary_every_s: float = Field(default=10.0, gt=0, le=3600)
    """How often failures that were not recorded one by one are written as one summary record."""
    max_peers: int = Field(default=10_000, ge=1, le=10_000_000)
    """Peers tracked individually (buckets and summary counts); the rest share one count."""


class FailureAuditLimiter:
    """Admits failure records by token buckets and counts the ones it does not admit.

    Not thread-safe: used from the event loop only.
    """

    def __init__(self, config: FailureAuditConfig, *, now: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._now = now
        self._peers = RateLimiter(
            RateLimitConfig(
                rate_per_s=config.per_peer_per_s, burst=config.per_peer_burst, max_subjects=config.max_peers
            ),
            now=now,
        )
        self._global = RateLimiter(
            RateLimitConfig(rate_per_s=config.global_per_s, burst=config.global_burst, max_subjects=1),
            now=now,
        )
        # peer -> failures not recorded individually since the last summary; at most max_peers + 1 keys.
        self._suppressed: Counter[str] = Counter()
        self._last_summary = now()

    def admit(self, peer: str) -> bool:
        """True when a failure from ``peer`` gets its own record; otherwise it is counted."""
        try:
            self._peers.check(peer)
            self._global.check("*")
        except ResourceExhausted:
            key = (
                peer if peer in self._suppressed or len(self._suppressed) < self.config.max_peers else _OTHER
            )
            self._suppressed[key] += 1
            return False
        return True

    def take_summary(self, *, force: bool = False) -> Counter[str] | None:
        """The counts to write as a summary now (and forget), or None when nothing is due."""
        if not self._suppressed:
            return None
        if not force and self._now() - self._last_summary < self.config.summary_every_s:
            return None
        self._last_summary = self._now()
        counts, self._suppressed = self._suppressed, Counter()
        return counts

    def give_back(self, counts: Counter[str]) -> None:
        """Re-add counts whose summary record could not be written (written with the next one)."""
        self._suppressed.update(counts)
