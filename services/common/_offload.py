"""Where CPU-heavy work proportional to one request's size runs: inline when the request is
small, on a bounded thread pool when it is large.

One caller's large input must not cost other callers anything, and the event loop answers
everyone, health checks included. Converting a 3 MB Struct of small entries to Python takes
about a second, so does a check of a 1 MiB text. Fairness rests on three bounds together:

- work on inputs up to ``inline_bytes`` runs inline (a few milliseconds at most), so
  ordinary calls never queue behind someone's huge input;
- larger work runs on ``workers`` threads (default one), first come first served, each
  bounded by the input limits of the service (message size, params and text limits);
- at most ``max_queued`` large pieces of work wait or run at once; beyond that a caller
  gets RESOURCE_EXHAUSTED (with a retry delay) instead of growing the queue without bound.

Worker threads share the interpreter lock with the loop, which Python hands over every few
milliseconds between bytecodes, so the loop keeps answering while a worker goes through a
large input, provided no single C call runs long (the redactor searches regexes window by
window for this reason).
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from services.common._errors import ResourceExhausted

__all__ = ["INLINE_ONLY", "Offload"]

T = TypeVar("T")


class Offload:
    """Runs work inline or on the bounded pool by input size. One per process; `close` at exit."""

    def __init__(
        self, *, workers: int = 1, inline_bytes: int = 4096, max_queued: int = 32, name: str = "vigil-offload"
    ) -> None:
        self.inline_bytes = inline_bytes
        self.max_queued = max_queued
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix=name)
        self._admitted = 0

    async def run(self, size: int, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)``: inline when ``size`` (bytes or characters of input) is small, else on the pool.

        Raises:
            ResourceExhausted: ``max_queued`` large pieces of work are already admitted.
        """
        if size <= self.inline_bytes:
            return fn(*args)
        if self._admitted >= self.max_queued:
            raise ResourceExhausted("too many large inputs are being processed; retry shortly", 1.0)
        self._admitted += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args))
        finally:
            self._admitted -= 1

    def close(self) -> None:
        """Stop the workers (work still queued is dropped; its callers are gone at shutdown)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


INLINE_ONLY = Offload(inline_bytes=sys.maxsize, name="vigil-inline")
"""Runs everything inline (its pool never starts a thread): the default of components built
without the service's own `Offload` (tests, tools)."""
