from __future__ import annotations

import asyncio
import socket

import grpc
import pytest

from services.common import ResourceExhausted, Unavailable, new_run_refusal
from services.workflow._degradation import DegradationGate, HealthdWatcher, Level
from tests.conftest import eventually
from vigil.healthd.v1 import healthd_pb2 as hpb
from vigil.healthd.v1 import healthd_pb2_grpc as hpb_grpc


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
def test_read_only_and_offline_refuse_new_runs_as_retryable(level: Level) -> None:
    gate = DegradationGate(retry_after_s=2)
    gate.published = level
    for check in (gate.check_writable, lambda: gate.admit(priority=10, privileged=True)):
        with pytest.raises(Unavailable, match=level.name) as info:
            check()
        assert info.value.retry_after_s == 2  # a component is down: retry, nothing to change


@pytest.mark.parametrize("level", list(Level))
def test_the_gate_admits_by_the_readiness_rule(level: Level) -> None:
    """One rule: what the gate admits for an ordinary caller is what healthd's readiness says."""
    gate = DegradationGate()
    gate.published = level
    try:
        gate.admit(priority=0, privileged=False)
    except (Unavailable, ResourceExhausted):
        admitted = False
    else:
        admitted = True
    assert admitted == (new_run_refusal(level) is None)
    assert admitted == (level <= Level.DEGRADED)


def test_a_dependency_refusal_gets_a_retry_delay() -> None:
    gate = DegradationGate(retry_after_s=0.5)
    assert gate.retryable(Unavailable("store down")).retry_after_s == 0.5
    assert gate.retryable(Unavailable("breaker", retry_after_s=3)).retry_after_s == 3


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
    assert Level.from_proto(6) is Level.NORMAL and Level.from_proto(-1) is Level.NORMAL  # unknown


class NewerHealthd(hpb_grpc.HealthDaemonServicer):
    """healthd's WatchSystemHealth as a newer release may send it: a level this release does
    not know between known ones (proto3 enums are open, so it arrives as a plain int)."""

    def __init__(self, levels: list[int]) -> None:
        self.levels = levels
        self.sent = 0
        self.release = asyncio.Event()

    async def WatchSystemHealth(self, request, context):  # type: ignore[no-untyped-def]
        for level in self.levels:
            msg = hpb.WatchSystemHealthResponse()
            msg.health.degradation_level = level  # type: ignore[assignment]
            yield msg
            self.sent += 1
            await self.release.wait()
            self.release.clear()


async def test_unknown_level_from_a_newer_healthd_is_normal_and_watching_goes_on() -> None:
    healthd = NewerHealthd([Level.READ_ONLY.to_proto(), 42, Level.RESTRICTED.to_proto()])
    server = grpc.aio.server()
    hpb_grpc.add_HealthDaemonServicer_to_server(healthd, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    gate = DegradationGate()
    seen: list[Level] = []
    watcher = HealthdWatcher(f"127.0.0.1:{port}", gate, on_change=seen.append)
    task = asyncio.create_task(watcher.run())
    try:
        for expected in (Level.READ_ONLY, Level.NORMAL, Level.RESTRICTED):

            def reached(level: Level = expected) -> bool:
                return gate.published is level

            await eventually(reached)
            assert not task.done()  # the watcher is still following the stream
            healthd.release.set()
        assert seen == [Level.READ_ONLY, Level.NORMAL, Level.RESTRICTED]
        assert watcher.connected.is_set()  # one stream throughout: no reconnect was needed
    finally:
        task.cancel()
        await server.stop(0)


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
