"""Fixtures shared by the workflow unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

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
