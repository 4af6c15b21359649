"""The client side of RetryInfo: after a RESOURCE_EXHAUSTED refusal, wait the delay it names
(with a little jitter, so refused callers do not return in lockstep), then try again.

Bounded by attempts and by total waiting; a delay beyond what is left is not waited at all
(the refusal is raised at once, so the caller can decide). Use it only for calls that are
safe to repeat: reads, decisions, and starts that carry an idempotency key.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from services.common._errors import ResourceExhausted

__all__ = ["RetryAfter"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryAfter:
    """How long a client waits out RESOURCE_EXHAUSTED refusals before giving up."""

    max_attempts: int = 3
    """Calls in all, the first included (1: never retry)."""
    max_wait_s: float = 2.0
    """Total time spent waiting between attempts."""
    jitter: float = 0.1
    """Each wait is the server's delay times 1..1+jitter."""

    async def call(self, attempt: Callable[[], Awaitable[T]], *, budget_s: float | None = None) -> T:
        """Run ``attempt`` until it does not raise `ResourceExhausted` or the bounds are reached.

        ``budget_s`` further bounds the waiting (e.g. what is left of the caller's deadline).
        """
        limit = self.max_wait_s if budget_s is None else min(self.max_wait_s, budget_s)
        started = time.monotonic()
        for n in range(1, self.max_attempts + 1):
            try:
                return await attempt()
            except ResourceExhausted as exc:
                delay = exc.retry_after_s * (1.0 + self.jitter * random.random())
                if n == self.max_attempts or not exc.advised or exc.retry_after_s <= 0:
                    raise
                if time.monotonic() - started + delay > limit:
                    raise
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")
