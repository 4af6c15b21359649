"""The gate never blocks the event loop: scrypt and audit writes wait on worker threads."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from services.common import Unauthenticated
from services.security import AuthConfig, Level, SecurityConfig, new_key
from services.security._audit import AuditFilter
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


async def test_failed_authentications_are_recorded_up_to_a_rate_then_summarized(tmp_path: Path) -> None:
    clock = [1000.0]
    cfg = SecurityConfig(
        audit={  # type: ignore[arg-type]
            "db_path": tmp_path / "audit.db",
            "failures": {"per_peer_burst": 3, "per_peer_per_s": 0.001, "global_burst": 5,
                         "global_per_s": 0.001, "summary_every_s": 10},
        },
    )  # fmt: skip
    c = SecurityCore.from_config(cfg, clock=lambda: clock[0])
    try:
        for peer, n in (("ipv4:10.0.0.1:1", 10), ("ipv4:10.0.0.2:1", 3)):
            for _ in range(n):
                with pytest.raises(Unauthenticated):  # every failure is still refused
                    await c.gate.authenticate("bad", action="t", peer=peer)
        denied, _ = c.audit.list(AuditFilter(action="t"))
        assert len(denied) == 5  # 3 from the first peer (its burst), 2 more until the global burst
        assert await c.gate.flush_failures() == 0  # not due yet
        clock[0] += 10
        assert await c.gate.flush_failures() == 8
        (summary,), _ = c.audit.list(AuditFilter(action="authenticate.failures"))
        assert summary.subject == "anonymous" and summary.reason.startswith("8 more failed")
        # Peer addresses are redacted in audit text like any other (mapping keys too), kept distinct.
        top = {"ipv4:[REDACTED:ipv4]:1": 7, "ipv4:[REDACTED:ipv4]:1#2": 1}
        assert json.loads(summary.details)["top_peers"] == top
        assert await c.gate.flush_failures(force=True) == 0  # nothing left over
    finally:
        c.close()
