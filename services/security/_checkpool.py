"""Where CPU-heavy input checks run: small inputs inline, large ones on a bounded thread pool.
Conversions of large message parts (a Struct to Python and back) run here too
(`SecurityOperations.convert`).

Every check is linear in its input and every input has a size limit, so one check is
bounded; what remains is that a large one (a 1 MiB Sanitize text, a 4 MiB params value)
still takes tenths of a second, which must not be spent on the event loop that answers
health checks and everyone else's calls. Fairness rests on three bounds together:

- inputs up to ``inline_bytes`` are checked inline (a few milliseconds at most), so
  ordinary calls never queue behind someone's huge input;
- larger ones run on ``workers`` threads (default one), first come first served, each bounded
  by the input limits (prompt.max_chars, validation.sanitize_max_chars, the message size);
- at most ``max_queued`` large checks wait or run at once; beyond that a caller gets
  RESOURCE_EXHAUSTED (with a retry delay) instead of growing the queue without bound.

Worker threads share the interpreter lock with the loop, which Python hands over every few
milliseconds between bytecodes, so the loop keeps answering while a worker goes through a
large input, provided no single C call runs long: RE2 matches are fast, and the redactor
searches Python regexes window by window for this reason.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pydantic import Field

from services.common import ConfigModel, ResourceExhausted

__all__ = ["CheckPool", "ValidationConfig"]

T = TypeVar("T")


class ValidationConfig(ConfigModel):
    """Where input checks run and how large the inputs without a limit of their own may be."""

    workers: int = Field(default=1, ge=1, le=32)
    """Threads checking large inputs. The checks are Python and regex code holding the interpreter
    lock, so more threads add no throughput, only contention with the event loop: keep 1 unless
    the checks change."""
    inline_bytes: int = Field(default=4096, ge=0, le=1 << 20)
    """Inputs up to this size are checked on the event loop (cheaper than a thread hop)."""
    max_queued: int = Field(default=32, ge=1, le=10_000)
    """Large checks waiting or running at once; more are refused with RESOURCE_EXHAUSTED."""
    sanitize_max_chars: int = Field(default=1 << 20, ge=1, le=16 << 20)
    """Longest Sanitize ``text`` accepted, in characters (longer: INVALID_ARGUMENT)."""


class CheckPool:
    """Runs checks inline or on the bounded pool by input size. One per process; `close` at exit."""

    def __init__(self, config: ValidationConfig | None = None) -> None:
        self.config = config or ValidationConfig()
        self._executor = ThreadPoolExecutor(self.config.workers, thread_name_prefix="vigil-check")
        self._admitted = 0

    async def run(self, size: int, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)``: inline when ``size`` (bytes or characters of input) is small, else on the pool.

        Raises:
            ResourceExhausted: ``max_queued`` large checks are already admitted.
        """
        if size <= self.config.inline_bytes:
            return fn(*args)
        if self._admitted >= self.config.max_queued:
            raise ResourceExhausted("too many large inputs are being checked; retry shortly", 1.0)
        self._admitted += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args))
        finally:
            self._admitted -= 1

    def close(self) -> None:
        """Stop the workers (checks still queued are dropped; their callers are gone at shutdown)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
