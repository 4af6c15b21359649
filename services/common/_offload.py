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

Worker threads share the interpreter lock with the loop, which Python hands over between
bytecodes once a waiting thread has waited its switch interval, so the loop keeps answering
while a worker goes through a large input, provided no single C call runs long (the
redactor searches regexes window by window for this reason). While large work runs the
process's switch interval is `FAIR_SWITCH_S` instead of Python's 5 ms: an ordinary call
takes the lock a dozen times (loop turns, the store's writer thread), and each wait was up
to 5 ms (a StartRun's p99 went from 0.82 to 0.38 s beside a caller paging large runs).
Outside those periods the default applies, which is cheaper under plain load (about 3% of
CPU at c64).
"""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from services.common._errors import ResourceExhausted

__all__ = ["FAIR_SWITCH_S", "INLINE_ONLY", "Offload"]

T = TypeVar("T")
FAIR_SWITCH_S = 0.001
"""The interpreter's switch interval while any `Offload` runs large work in this process."""


class _Fairness:
    """Lowers the process's switch interval while large work runs anywhere in the process,
    and restores the one it found when the last such piece ends (counted across Offloads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._saved = sys.getswitchinterval()

    def __enter__(self) -> None:
        with self._lock:
            if self._running == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, FAIR_SWITCH_S))
            self._running += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0:
                sys.setswitchinterval(self._saved)


_FAIRNESS = _Fairness()


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
            with _FAIRNESS:
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
