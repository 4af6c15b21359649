"""The one Clock protocol: the system clock and the suite's one fake both satisfy it."""

from __future__ import annotations

import asyncio
import time

from services.common import SYSTEM_CLOCK, Clock
from tests.clock import FakeClock


async def test_system_clock_reads_both_clocks_and_sleeps_on_the_monotonic_one() -> None:
    clock: Clock = SYSTEM_CLOCK
    assert abs(clock.time() - time.time()) < 5
    deadline = clock.monotonic() + 0.01
    await clock.sleep_until(deadline)
    assert clock.monotonic() >= deadline
    await clock.sleep(-1)  # a deadline already past returns at once


async def test_fake_sleepers_wake_only_when_time_reaches_them() -> None:
    clock = FakeClock(0.0)
    as_clock: Clock = clock  # the fake is a Clock (checked by mypy)
    assert as_clock.monotonic() == 0.0
    woke: list[float] = []

    async def sleeper(until: float) -> None:
        await clock.sleep_until(until)
        woke.append(clock.monotonic())

    tasks = [asyncio.create_task(sleeper(t)) for t in (2.0, 1.0, 1.0)]
    await clock.run_for(0.5)
    assert woke == []
    await clock.run_for(0.5)
    assert woke == [1.0, 1.0]
    await clock.run_for(5)
    assert woke == [1.0, 1.0, 6.0] and clock.time() == clock() == 6.0
    await asyncio.gather(*tasks)


async def test_fake_sleep_that_advances_records_what_the_code_chose() -> None:
    clock = FakeClock(sleep_advances=True)
    await clock.sleep(1.5)
    await clock.sleep(0.25)
    assert clock.slept == [1.5, 0.25] and clock.now == 1001.75
