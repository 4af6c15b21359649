"""The engine end to end in-process, with real child processes and real checks: maintenance,
refusals, shutdown, subscribers, the watchdog, snapshots, levels. Healing: test_engine_healing.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from healthd import EventKind, HealState, HealthEngine, Level, Reason, Status, SystemStatus
from healthd._events import EventLog
from healthd._types import CheckResult
from tests.clock import FakeClock
from tests.healthd_util import (
    assert_no_pid,
    config,
    eventually,
    garbage_server,
    proc_check,
)
from tests.unit.healthd.engine_support import (
    SLEEPER,
    healed_sleeper,
    slow_flag_check,
    start_engine,
)


async def test_maintenance_pauses_checks_and_healing(engines: list[HealthEngine]) -> None:
    engine = await start_engine(
        engines,
        components=[healed_sleeper()],
    )
    await eventually(lambda: engine.statuses()["svc"] is Status.SERVING)
    engine.set_maintenance("svc", True, "upgrading")
    child = engine.supervisor.children["svc"]
    os.kill(child.pid or 0, signal.SIGKILL)
    await eventually(lambda: child.returncode is not None)
    assert child.restarts == 0
    assert engine.snapshot().components[0].heal_state is HealState.MAINTENANCE
    assert engine.snapshot().system.status is SystemStatus.HEALTHY  # excluded while in maintenance
    engine.set_maintenance("svc", False)
    await eventually(lambda: child.restarts == 1 and engine.statuses()["svc"] is Status.SERVING, 5)


async def test_unknown_component_and_refusals(engines: list[HealthEngine]) -> None:
    from services.common import FailedPrecondition, NotFound

    engine = await start_engine(
        engines, components=[{"name": "a", "checks": [proc_check()], "process": {"argv": SLEEPER}}]
    )
    with pytest.raises(NotFound):
        engine.heal("zzz")
    with pytest.raises(NotFound):
        await engine.check_now("zzz")
    with pytest.raises(FailedPrecondition, match="no healing"):
        engine.heal("a")


async def test_shutdown_turns_overall_not_serving_and_stops_children(engines: list[HealthEngine]) -> None:
    engine = await start_engine(
        engines, components=[{"name": "a", "checks": [proc_check()], "process": {"argv": SLEEPER}}]
    )
    await eventually(lambda: engine.statuses()[""] is Status.SERVING)
    pids = engine.supervisor.pids()
    engines.remove(engine)
    await engine.stop()
    assert engine.statuses()[""] is Status.NOT_SERVING
    assert_no_pid(pids)


async def test_slow_subscriber_never_blocks_publisher_or_others() -> None:
    log = EventLog(history=100)
    slow, fast = log.subscribe(maxsize=5), log.subscribe(maxsize=1000)
    for i in range(50):
        log.publish(EventKind.STATUS, "a", str(i))
    got = []
    for _ in range(50):
        got.append((await anext(fast)).message)
    assert got == [str(i) for i in range(50)]
    assert slow.dropped == 45
    assert [(await anext(slow)).message for _ in range(5)] == ["45", "46", "47", "48", "49"]
    slow.close()
    fast.close()
    assert len(log.since(seq=40)) == 10


async def test_watchdog_liveness_turns_not_serving_when_the_loop_stalls(engines: list[HealthEngine]) -> None:
    engine = await start_engine(
        engines,
        watchdog={"interval_s": 0.05, "stall_after_s": 0.2},
        components=[{"name": "a", "checks": [proc_check()], "process": {"argv": SLEEPER}}],
    )
    await eventually(lambda: engine.scheduler.jobs[0].runs >= 2)  # checks and watchdog are running
    assert engine.statuses()["liveness"] is Status.SERVING
    with engine.subscribe() as sub:
        time.sleep(0.5)  # noqa: ASYNC251 - a blocking call on the event loop: the scheduler stalls for real
        event = await asyncio.wait_for(anext(e async for e in sub if e.kind is EventKind.LIVENESS), 2)
        assert event.new == "NOT_SERVING" and "stalled" in event.message
        recovered = await asyncio.wait_for(anext(e async for e in sub if e.kind is EventKind.LIVENESS), 2)
        assert recovered.new == "SERVING"


async def test_snapshot_exports_as_json(engines: list[HealthEngine]) -> None:
    engine = await start_engine(
        engines, components=[{"name": "a", "checks": [proc_check()], "process": {"argv": SLEEPER}}]
    )
    await eventually(lambda: engine.statuses()["a"] is Status.SERVING)
    data = json.loads(json.dumps(engine.snapshot().as_dict()))
    assert data["system"]["status"] == "HEALTHY" and data["liveness"] == "SERVING"
    (component,) = data["components"]
    assert component["health"]["name"] == "a" and component["checks"][0]["kind"] == "process"
    assert component["pid"] == engine.supervisor.children["a"].pid


async def test_degradation_level_transitions_on_an_injected_clock(tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    db, cache = tmp_path / "db", tmp_path / "cache"
    db.touch()
    cache.touch()
    engine = HealthEngine(
        config(
            level_recovery_s=3,
            level_flap_count=1,
            components=[
                {"name": "db", "checks": [slow_flag_check(db)], "degrades_to": "READ_ONLY"},
                {"name": "api", "checks": [slow_flag_check(db)], "depends_on": ["db"]},
                {"name": "cache", "checks": [slow_flag_check(cache)], "critical": False},
            ],
        ),
        clock=clock,
    )
    await engine.start()
    level = lambda: engine.snapshot().system.level  # noqa: E731 - read often below

    async def tick_until(cond: Any) -> None:
        # Fake time moves in check-interval steps; each step's checks finish in real time.
        async def step() -> bool:
            await clock.run_for(0.1)
            return bool(cond())

        await eventually(step, 10)

    try:
        await tick_until(lambda: engine.snapshot().system.status is SystemStatus.HEALTHY)
        cache.unlink()
        await tick_until(lambda: level() is Level.DEGRADED)  # non-critical down: worse at once
        db.unlink()
        await tick_until(lambda: level() is Level.OFFLINE)  # every critical component down
        api = engine.snapshot().components[1].health
        assert (api.reason, api.cause) == (Reason.DEPENDENCY_DOWN, "db")
        db.touch()
        cache.touch()
        # A single recovery is not held: the level follows the components at once, and
        # readiness with it.
        await tick_until(lambda: engine.snapshot().system.status is SystemStatus.HEALTHY)
        assert level() is Level.NORMAL
        assert engine.statuses()["readiness"] is Status.SERVING
        # A second recovery within the flap window is held: the components serve, but the
        # level (and so readiness) waits level_recovery_s; the system is DEGRADED meanwhile.
        db.unlink()
        await tick_until(lambda: level() is Level.OFFLINE)
        repaired_at = clock.now
        db.touch()
        await tick_until(lambda: all(c.health.status is Status.SERVING for c in engine.snapshot().components))
        assert level() is Level.OFFLINE
        assert engine.snapshot().system.status is SystemStatus.DEGRADED
        assert engine.statuses()["readiness"] is Status.NOT_SERVING
        await tick_until(lambda: level() is Level.NORMAL)
        assert clock.now - repaired_at >= 3
        assert engine.statuses()["readiness"] is Status.SERVING
    finally:
        await engine.stop()


async def test_a_check_target_speaking_garbage_is_down_not_a_dead_scheduler(
    engines: list[HealthEngine],
) -> None:
    server, port = await garbage_server()
    try:
        engine = await start_engine(
            engines,
            mode="sidecar",
            watchdog={"interval_s": 0.05, "stall_after_s": 1.0},
            components=[
                {
                    "name": "web",
                    "checks": [
                        {
                            "kind": "http",
                            "url": f"http://127.0.0.1:{port}/healthz",
                            "interval_s": 0.05,
                            "timeout_s": 1.0,
                            "failure_threshold": 1,
                        }
                    ],
                }
            ],
        )
        job = engine.scheduler.jobs[0]
        await eventually(lambda: engine.statuses()["web"] is Status.NOT_SERVING)
        assert "BadStatusLine" in engine.snapshot().components[0].checks[0].message
        # The check keeps running on its grid, and healthd's own liveness is untouched:
        # a garbage-speaking target is that component's problem, never a reason to restart the pod.
        runs = job.runs
        await eventually(lambda: job.runs >= runs + 5, 5)
        assert engine.statuses()["liveness"] is Status.SERVING
        assert EventKind.LIVENESS not in [e.kind for e in engine.events.since()]
    finally:
        server.close()


async def test_level_without_is_held_while_the_level_flaps(tmp_path: Path) -> None:
    """A component's own failure is left out of ``level_without``, damping is not: a replica
    crashing over and over (or one down while another component's recovery is held) must not
    read a level the system itself would hold back."""
    clock = FakeClock(0.0)
    wf, db, sec = tmp_path / "wf", tmp_path / "db", tmp_path / "sec"
    for flag in (wf, db, sec):
        flag.touch()
    engine = HealthEngine(
        config(
            level_recovery_s=3,
            level_flap_count=1,
            components=[
                {"name": "wf", "checks": [slow_flag_check(wf)], "degrades_to": "RESTRICTED"},
                {"name": "db", "checks": [slow_flag_check(db)], "degrades_to": "READ_ONLY"},
                {"name": "sec", "checks": [slow_flag_check(sec)]},
            ],
        ),
        clock=clock,
    )
    await engine.start()
    system = lambda: engine.snapshot().system  # noqa: E731 - read often below

    async def tick_until(cond: Any) -> None:
        async def step() -> bool:
            await clock.run_for(0.1)
            return bool(cond())

        await eventually(step, 10)

    try:
        await tick_until(lambda: system().status is SystemStatus.HEALTHY)
        wf.unlink()  # a single crash: its own entry reopens at once
        await tick_until(lambda: system().level is Level.RESTRICTED)
        assert system().level_without == {"wf": Level.NORMAL}
        wf.touch()
        await tick_until(lambda: system().level is Level.NORMAL)  # first recovery: not held
        wf.unlink()  # crashed again within the flap window: a recovery would be held now
        await tick_until(lambda: system().level is Level.RESTRICTED)
        assert system().level_without == {}
        wf.touch()
        await tick_until(lambda: system().level is Level.NORMAL)  # held 3 s, then NORMAL
        # db flaps while wf is down: db's recovery is held at READ_ONLY, and so is wf's entry.
        db.unlink()
        await tick_until(lambda: system().level is Level.READ_ONLY)
        wf.unlink()
        await tick_until(lambda: engine.statuses()["wf"] is Status.NOT_SERVING)
        db.touch()
        await tick_until(lambda: engine.statuses()["db"] is Status.SERVING)
        assert system().level is Level.READ_ONLY and system().level_without == {}
    finally:
        await engine.stop()


async def test_a_result_that_changes_no_status_rebuilds_only_its_components_view(
    engines: list[HealthEngine], tmp_path: Path
) -> None:
    # With 100 components a full re-evaluation per check result cost healthd 70% of a core.
    flag = tmp_path / "up"
    flag.touch()
    names = ["a", "b", "c"]
    checks = [slow_flag_check(flag) | {"interval_s": 60}]  # results below come from the test
    engine = await start_engine(engines, components=[{"name": n, "checks": checks} for n in names])
    await eventually(lambda: all(c.health.status is Status.SERVING for c in engine.snapshot().components), 10)
    seen: list[Any] = []
    engine.add_listener(seen.append)
    before = engine.snapshot()
    events = len(engine.events.since())
    unit = engine._units_of["b"][0]
    engine._on_result(unit, 0, CheckResult(Status.SERVING, 0.0042, "ok"))
    after = engine.snapshot()
    assert seen == [after] and len(engine.events.since()) == events  # no status changed
    assert after.system is before.system
    assert after.components[0] is before.components[0] and after.components[2] is before.components[2]
    b = after.components[1]
    assert b.checks[0].latency_s == 0.0042 and b != before.components[1]
    assert after == engine._compute()  # what a full re-evaluation would show
    # A result that changes a status takes the full path: the status and its event.
    engine._on_result(unit, 0, CheckResult(Status.NOT_SERVING, 0.001, "down"))
    assert engine.snapshot().components[1].health.status is Status.NOT_SERVING
    assert any(e.kind is EventKind.STATUS for e in engine.events.since(component="b"))
