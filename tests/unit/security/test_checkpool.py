"""The check pool: small inputs inline, large ones on the worker thread, bounded admission."""

from __future__ import annotations

import asyncio
import threading

import pytest

from services.common import ResourceExhausted
from services.security._checkpool import CheckPool, ValidationConfig


async def test_small_inputs_run_inline_and_large_ones_on_a_worker() -> None:
    pool = CheckPool(ValidationConfig(inline_bytes=100))
    try:
        assert await pool.run(100, threading.get_ident) == threading.get_ident()
        assert await pool.run(101, threading.get_ident) != threading.get_ident()
    finally:
        pool.close()


async def test_admission_is_bounded_and_refusals_carry_a_retry_delay() -> None:
    pool = CheckPool(ValidationConfig(inline_bytes=0, max_queued=2))
    release = threading.Event()
    try:
        running = [asyncio.ensure_future(pool.run(1, release.wait, 10)) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(ResourceExhausted) as exc:
            await pool.run(1, len, "x")
        assert exc.value.retry_after_s > 0
        assert await pool.run(0, len, "inline") == 6  # small inputs are never refused
        release.set()
        assert await asyncio.gather(*running) == [True, True]
        assert await pool.run(1, len, "again") == 5  # admitted again once the others finished
    finally:
        release.set()
        pool.close()
