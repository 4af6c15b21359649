"""The gate never blocks the event loop: scrypt and audit writes wait on worker threads."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from services.common import Unauthenticated
from services.security import AuthConfig, Level, SecurityConfig, new_key
from services.security._core import SecurityCore
from tests.conftest import eventually


class Ticker:
    """Counts event-loop turns; a blocked loop does not count."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0)

    def stop(self) -> None:
        self._task.cancel()


def core(tmp_path: Path, *, n: int = 1 << 14) -> tuple[SecurityCore, str]:
    token, entry = new_key("ci", Level.AUTHENTICATED, n=n)
    cfg = SecurityConfig(
        auth=AuthConfig(api_keys=(entry,)),
        audit={"db_path": tmp_path / "audit.db"},  # type: ignore[arg-type]
    )
    return SecurityCore.from_config(cfg), token


async def test_first_key_verification_runs_off_the_loop(tmp_path: Path) -> None:
    c, token = core(tmp_path, n=1 << 16)  # a real-cost scrypt (~100 ms)
    ticker = Ticker()
    try:
        call = asyncio.ensure_future(c.gate.authenticate(token, action="t"))
        await eventually(lambda: ticker.ticks > 20 and not call.done(), timeout=10)
        assert (await call).subject == "ci"
    finally:
        ticker.stop()
        c.close()


async def test_failure_record_waits_for_a_locked_database_off_the_loop(tmp_path: Path) -> None:
    c, _ = core(tmp_path)
    await c.audit.append_async(action="warm-up", decision="ALLOW")  # the writer thread exists
    blocker = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    ticker = Ticker()
    try:
        call = asyncio.ensure_future(c.gate.authenticate("not-a-token", action="t"))
        await eventually(lambda: ticker.ticks > 20 and not call.done(), timeout=10)
        blocker.execute("ROLLBACK")
        with pytest.raises(Unauthenticated):
            await call
    finally:
        ticker.stop()
        blocker.close()
        c.close()
