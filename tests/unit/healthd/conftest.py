"""Fixtures of healthd's unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from healthd import HealthEngine
from tests.healthd_util import assert_no_pid


@pytest.fixture
async def engines() -> AsyncIterator[list[HealthEngine]]:
    made: list[HealthEngine] = []
    yield made
    for engine in made:
        pids = engine.supervisor.pids()
        await engine.stop()
        assert_no_pid(pids)
