"""Run a small synchronous job every few seconds until told to stop (no sleep-forever loops)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable

__all__ = ["every"]


async def every(stop: asyncio.Event, interval_s: float, job: Callable[[], object]) -> None:
    """Call ``job`` now and then every ``interval_s`` until ``stop`` is set; returns promptly on stop.

    ``job`` may be a coroutine function; its result is awaited before the next wait.
    """
    while not stop.is_set():
        result = job()
        if inspect.isawaitable(result):
            await result
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        except TimeoutError:
            continue
