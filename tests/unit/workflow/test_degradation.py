from __future__ import annotations

import asyncio
import socket

import pytest

from services.common import FailedPrecondition, ResourceExhausted
from services.workflow._degradation import DegradationGate, HealthdWatcher, Level


def test_normal_admits_everything_and_records_nothing() -> None:
    assert DegradationGate().admit(priority=-5, privileged=False) is None


def test_degraded_admits_and_is_recorded() -> None:
    gate = DegradationGate()
    gate.published = Level.DEGRADED
    assert gate.admit(priority=0, privileged=False) is Level.DEGRADED


def test_restricted_keeps_privileged_work_only() -> None:
    gate = DegradationGate(retry_after_s=3)
    gate.published = Level.RESTRICTED
    assert gate.admit(priority=0, privileged=True) is Level.RESTRICTED
    with pytest.raises(ResourceExhausted) as info:
        gate.admit(priority=0, privileged=False)
    assert info.value.retry_after_s == 3
    with pytest.raises(ResourceExhausted):
        gate.admit(priority=-1, privileged=True)  # low priority is shed even when privileged


@pytest.mark.parametrize("level", [Level.READ_ONLY, Level.OFFLINE])
def test_read_only_and_offline_refuse_new_runs(level: Level) -> None:
    gate = DegradationGate()
    gate.published = level
    with pytest.raises(FailedPrecondition, match=level.name):
        gate.admit(priority=10, privileged=True)


def test_own_dependency_state_combines_with_published() -> None:
    gate = DegradationGate()
    gate.set_dependency("store", Level.READ_ONLY)
    assert gate.level is Level.READ_ONLY
    gate.published = Level.DEGRADED
    gate.set_dependency("store", None)
    assert gate.level is Level.DEGRADED


def test_proto_mapping() -> None:
    assert Level.from_proto(0) is Level.NORMAL  # unspecified
    assert [Level.from_proto(v) for v in range(1, 6)] == list(Level)
    assert Level.RESTRICTED.to_proto() == 3


async def test_unreachable_healthd_means_normal() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gate = DegradationGate()
    gate.published = Level.READ_ONLY
    watcher = HealthdWatcher(f"127.0.0.1:{port}", gate, max_backoff_s=0.05)
    task = asyncio.create_task(watcher.run())
    try:
        for _ in range(200):
            if gate.published is Level.NORMAL:
                break
            await asyncio.sleep(0.01)
        assert gate.published is Level.NORMAL and not watcher.connected.is_set()
    finally:
        task.cancel()
