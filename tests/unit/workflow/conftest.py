"""Fixtures shared by the workflow unit tests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.workflow._config import LimitsConfig
from services.workflow._degradation import DegradationGate
from services.workflow._runs import Operations
from services.workflow._security_client import Caller, Screened
from tests.unit.workflow._harness import Harness


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path)
    await harness.store.open()
    await harness.executor.start()
    yield harness
    await harness.executor.stop()
    await harness.pool.close()
    await harness.store.close()


class Screening:
    """The security service's answer to Screen, as the test sets it."""

    def __init__(self) -> None:
        self.refuse: Exception | None = None

    async def screen(self, *, token: str, params: dict[str, Any], **kw: Any) -> Screened:
        if self.refuse is not None:
            raise self.refuse
        return Screened(subject="alice", level=2, params=params)

    async def authenticate(self, token: str, remaining_s: float | None = None) -> Caller:
        return Caller("alice", 2)


@pytest.fixture
def screening() -> Screening:
    return Screening()


@pytest.fixture
async def ops(h: Harness, screening: Screening) -> AsyncIterator[Operations]:
    yield Operations(
        executor=h.executor,
        security=screening,
        gate=DegradationGate(),
        limits=LimitsConfig(),
        clock=time.time,
    )
