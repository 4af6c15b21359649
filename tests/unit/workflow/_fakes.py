"""Test doubles for time: a clock that tests drive and a sleep that advances it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def eventually(
    fn: Callable[[], Any],
    timeout: float = 5.0,  # noqa: ASYNC109 - a poller's budget, not an operation timeout
    interval: float = 0.01,
) -> Any:
    """Poll ``fn`` until it returns truthy (returned) or ``timeout`` passes (then fail)."""
    end = time.monotonic() + timeout
    while True:
        value = fn()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
