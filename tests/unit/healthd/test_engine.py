"""The engine end to end in-process, with real child processes and real checks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from healthd import EventKind, HealState, HealthEngine, Level, Reason, Status, SystemStatus
from healthd._events import EventLog
from tests.clock import FakeClock
from tests.healthd_util import (
    assert_no_pid,
    config,
    eventually,
    flag_check,
    garbage_server,
    pid_alive,
    proc_check,
)

PY = sys.executable
SLEEPER = [PY, "-c", "import time; time.sleep(120)"]
CRASHER = [PY, "-c", "raise SystemExit(3)"]


def _flag_check(flag: Path) -> dict[str, Any]:
    return flag_check(flag, timeout_s=2)


def _healing(**kw: Any) -> dict[str, Any]:
    return {"action": "restart", "backoff_base_s": 0.1, "backoff_cap_s": 0.4, "backoff_jitter": 0, **kw}


def _crashy(**healing: Any) -> dict[str, Any]:
    """A component whose child always exits at once."""
    return {
        "name": "crashy",
        "process": {"argv": CRASHER},
        "checks": [proc_check()],
        "healing": _healing(**healing),
    }


@pytest.fixture
async def engines() -> AsyncIterator[list[HealthEngine]]:
    made: list[HealthEngine] = []
    yield made
    for engine in made:
        pids = engine.supervisor.pids()
        await engine.stop()
        assert_no_pid(pids)


async def _start(engines: list[HealthEngine], **data: Any) -> HealthEngine:
    engine = HealthEngine(config(**data), sink=lambda _line: None)
    engines.append(engine)
    await engine.start()
    return engine


def _kinds(engine: HealthEngine, component: str) -> list[EventKind]:
    return [e.kind for e in engine.events.since(component=component)]


async def test_kill_9_is_noticed_at_once_healed_and_recorded(engines: list[HealthEngine]) -> None:
    engine = await _start(
        engines,
        components=[
            {"name": "svc", "process": {"argv": SLEEPER}, "checks": [proc_check()], "healing": _healing()}
        ],
    )
    await eventually(lambda: engine.statuses()["svc"] is Status.SERVING)
    child = engine.supervisor.children["svc"]
    old = child.pid
    with engine.subscribe() as sub:
        os.kill(old or 0, signal.SIGKILL)
        event = await asyncio.wait_for(anext(e async for e in sub if e.kind is EventKind.STATUS), 1.0)
        assert (event.old, event.new, event.message) == ("SERVING", "NOT_SERVING", "killed by SIGKILL")
    await eventually(lambda: engine.statuses()["svc"] is Status.SERVING and child.pid != old, 5)
    assert child.restarts == 1
    kinds = _kinds(engine, "svc")
    assert EventKind.HEAL_ATTEMPT in kinds and EventKind.HEAL_RESULT in kinds
    assert engine.snapshot().components[0].heal_state is HealState.HEALTHY


async def test_always_crashing_child_backs_off_then_fatal_escalates(engines: list[HealthEngine]) -> None:
    engine = await _start(engines, components=[_crashy(max_attempts=3, start_timeout_s=5)])
    await eventually(lambda: engine.snapshot().components[0].heal_state is HealState.FATAL, 10)
    assert engine.statuses()["liveness"] is Status.NOT_SERVING
    assert "crashy" in engine.snapshot().liveness_reason
    backoffs = [e for e in engine.events.since(component="crashy") if e.new == "BACKOFF"]
    assert len(backoffs) == 2
    assert EventKind.ESCALATION in _kinds(engine, "crashy")
    assert engine.supervisor.children["crashy"].restarts == 3
    # An operator heal clears the escalation (and the child crashes again, honestly).
    engine.heal("crashy")
    await eventually(lambda: engine.statuses()["liveness"] is Status.SERVING)


async def test_backoff_delays_grow(engines: list[HealthEngine]) -> None:
    engine = await _start(engines, components=[_crashy(max_attempts=4, backoff_cap_s=1.0)])
    seen: list[float] = []

    def collect() -> bool:
        view = engine.snapshot().components[0]
        if view.heal_state is HealState.BACKOFF and (not seen or seen[-1] != view.backoff_s):
            seen.append(view.backoff_s)
        return view.heal_state is HealState.FATAL

    await eventually(collect, 10, interval=0.005)
    assert seen == sorted(seen) and len(seen) >= 2 and seen[-1] > seen[0]


async def test_dependency_down_is_not_healed_and_reported(
    engines: list[HealthEngine], tmp_path: Path
) -> None:
    flag = tmp_path / "db-up"
    flag.touch()
    engine = await _start(
        engines,
        level_recovery_s=0,
        components=[
            {"name": "db", "checks": [_flag_check(flag)], "degrades_to": "READ_ONLY"},
            {
                "name": "api",
                "depends_on": ["db"],
                "process": {"argv": SLEEPER},
                "checks": [proc_check()],
                "healing": _healing(),
            },
        ],
    )
    await eventually(lambda: engine.snapshot().system.status is SystemStatus.HEALTHY)
    flag.unlink()
    await eventually(lambda: engine.snapshot().system.status is SystemStatus.UNHEALTHY)
    api = engine.snapshot().components[1]
    assert (api.health.reason, api.health.cause, api.health.own) == (
        Reason.DEPENDENCY_DOWN,
        "db",
        Status.SERVING,
    )
    assert engine.snapshot().system.level is Level.OFFLINE
    assert api.heal_state in (HealState.HEALTHY, HealState.SUSPECT)
    assert engine.supervisor.children["api"].restarts == 0
    flag.touch()
    await eventually(lambda: engine.snapshot().system.level is Level.NORMAL)


async def test_a_component_down_with_its_dependency_is_not_restarted_before_the_dependency_is_checked(
    engines: list[HealthEngine], tmp_path: Path
) -> None:
    """The component notices first (its own probe of a full disk) while the dependency's next
    scheduled check is far away: the heal runs the dependency's checks, sees them fail and
    skips the restart (a restart frees no disk space)."""
    db_up, api_up = tmp_path / "db-up", tmp_path / "api-up"
    db_up.touch()
    api_up.touch()
    engine = await _start(
        engines,
        components=[
            {"name": "db", "checks": [_flag_check(db_up) | {"interval_s": 60}]},
            {
                "name": "api",
                "depends_on": ["db"],
                "process": {"argv": SLEEPER},
                "checks": [_flag_check(api_up)],
                "healing": _healing(),
            },
        ],
    )
    await eventually(lambda: engine.snapshot().system.status is SystemStatus.HEALTHY)
    db_up.unlink()
    api_up.unlink()
    await eventually(lambda: engine.snapshot().components[1].health.reason is Reason.DEPENDENCY_DOWN, 5)
    skipped = [e for e in engine.events.since(component="api") if e.kind is EventKind.HEAL_RESULT]
    assert skipped and skipped[0].new == "skipped" and "dependency 'db'" in skipped[0].message
    assert engine.supervisor.children["api"].restarts == 0
    db_up.touch()
    api_up.touch()
    await engine.check_now("db")
    await eventually(lambda: engine.snapshot().system.status is SystemStatus.HEALTHY, 5)
    assert engine.supervisor.children["api"].restarts == 0


async def test_maintenance_pauses_checks_and_healing(engines: list[HealthEngine]) -> None:
    engine = await _start(
        engines,
        components=[
            {"name": "svc", "process": {"argv": SLEEPER}, "checks": [proc_check()], "healing": _healing()}
        ],
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


async def test_sigstop_is_detected_by_check_timeout_and_restarted(
    engines: list[HealthEngine], tmp_path: Path
) -> None:
    # The child answers "pong" on a TCP socket; a stopped process still has the kernel accept
    # connections, but never answers, so only the check's timeout can tell.
    code = (
        "import socket\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        f"open({str(tmp_path / 'port')!r}, 'w').write(str(s.getsockname()[1]))\n"
        "while True:\n"
        "    c, _ = s.accept(); c.sendall(b'pong'); c.close()\n"
    )
    probe = (
        "import socket, sys\n"
        f"port = int(open({str(tmp_path / 'port')!r}).read())\n"
        "c = socket.create_connection(('127.0.0.1', port)); sys.exit(0 if c.recv(4) == b'pong' else 1)\n"
    )
    check = {
        "kind": "exec",
        "argv": [PY, "-c", probe],
        "interval_s": 0.2,
        "timeout_s": 0.5,
        "failure_threshold": 2,
    }
    engine = await _start(
        engines,
        components=[
            {"name": "svc", "process": {"argv": [PY, "-c", code]}, "checks": [check], "healing": _healing()}
        ],
    )
    await eventually(lambda: engine.statuses()["svc"] is Status.SERVING, 10)
    child = engine.supervisor.children["svc"]
    frozen = child.pid or 0
    os.kill(frozen, signal.SIGSTOP)
    await eventually(lambda: child.restarts == 1, 10)
    assert not pid_alive(frozen)
    await eventually(lambda: engine.statuses()["svc"] is Status.SERVING, 10)
    messages = [e.message for e in engine.events.since(component="svc")]
    assert any("timed out" in m for m in messages)


async def test_unknown_component_and_refusals(engines: list[HealthEngine]) -> None:
    from services.common import FailedPrecondition, NotFound

    engine = await _start(
        engines, components=[{"name": "a", "checks": [proc_check()], "process": {"argv": SLEEPER}}]
    )
    with pytest.raises(NotFound):
        engine.heal("zzz")
    with pytest.raises(NotFound):
        await engine.check_now("zzz")
    with pytest.raises(FailedPrecondition, match="no healing"):
        engine.heal("a")


async def test_shutdown_turns_overall_not_serving_and_stops_children(engines: list[HealthEngine]) -> None:
    engine = await _start(
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
    engine = await _start(
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
    engine = await _start(
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
                {"name": "db", "checks": [_flag_check(db)], "degrades_to": "READ_ONLY"},
                {"name": "api", "checks": [_flag_check(db)], "depends_on": ["db"]},
                {"name": "cache", "checks": [_flag_check(cache)], "critical": False},
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


async def test_a_healed_component_counts_as_started_only_after_passing_its_checks(
    engines: list[HealthEngine],
) -> None:
    engine = await _start(
        engines,
        components=[
            {"name": "svc", "process": {"argv": SLEEPER}, "checks": [proc_check()], "healing": _healing()}
        ],
    )
    await eventually(lambda: engine.snapshot().components[0].heal_state is HealState.HEALTHY)
    job = engine.scheduler.jobs[0]
    seen: list[tuple[HealState, int]] = []
    engine.add_listener(lambda snap: seen.append((snap.components[0].heal_state, job.runs)))
    engine.heal("svc", "rotate")  # a healthy component: its checks are still SERVING
    await eventually(lambda: seen and seen[-1][0] is HealState.HEALTHY and len(seen) > 2, 5)
    starting = next(runs for state, runs in seen if state is HealState.STARTING)
    healthy = next(runs for state, runs in seen if state is HealState.HEALTHY)
    assert healthy > starting  # a check ran on the new process before it counted as healthy


async def test_a_check_target_speaking_garbage_is_down_not_a_dead_scheduler(
    engines: list[HealthEngine],
) -> None:
    server, port = await garbage_server()
    try:
        engine = await _start(
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
