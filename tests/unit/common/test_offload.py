"""Offload: the interpreter hands its lock over more often while large work runs, never otherwise."""

from __future__ import annotations

import asyncio
import sys
import threading

from services.common import Offload
from services.common._offload import FAIR_SWITCH_S


async def test_large_work_runs_with_the_fair_switch_interval_and_restores_the_old_one() -> None:
    before = sys.getswitchinterval()
    assert before > FAIR_SWITCH_S  # Python's 5 ms unless someone lowered it
    one, two = Offload(inline_bytes=10), Offload(inline_bytes=10)
    release = threading.Event()
    try:
        assert await one.run(10, sys.getswitchinterval) == before  # inline work changes nothing
        first = asyncio.ensure_future(one.run(11, lambda: (release.wait(10), sys.getswitchinterval())[1]))
        await asyncio.sleep(0.05)
        assert sys.getswitchinterval() == FAIR_SWITCH_S
        # Another Offload's work ending while the first still runs keeps the interval low.
        assert await two.run(11, sys.getswitchinterval) == FAIR_SWITCH_S
        assert sys.getswitchinterval() == FAIR_SWITCH_S
        release.set()
        assert await first == FAIR_SWITCH_S
        assert sys.getswitchinterval() == before  # the last one out restores it
    finally:
        release.set()
        one.close()
        two.close()
        sys.setswitchinterval(before)
