"""The engine healing in-process, with real child processes and real checks: deaths, crash
loops, backoff, dependencies, a stopped process, a restart proving itself."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from healthd import EventKind, HealState, HealthEngine, Level, Reason, Status, SystemStatus
from tests.healthd_util import (
    eventually,
    pid_alive,
)
from tests.unit.healthd.engine_support import (
    PY,
    SLEEPER,
    crashy,
    event_kinds,
    healed_sleeper,
    restart_healing,
    slow_flag_check,
    start_engine,
)


async def test_kill_9_is_noticed_at_once_healed_and_recorded(engines: list[HealthEngine]) -> None:
    engine = await start_engine(
        engines,
        components=[healed_sleeper()],
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
    kinds = event_kinds(engine, "svc")
    assert EventKind.HEAL_ATTEMPT in kinds and EventKind.HEAL_RESULT in kinds
    assert engine.snapshot().components[0].heal_state is HealState.HEALTHY


async def test_always_crashing_child_backs_off_then_fatal_escalates(engines: list[HealthEngine]) -> None:
    engine = await start_engine(engines, components=[crashy(max_attempts=3, start_timeout_s=5)])
    await eventually(lambda: engine.snapshot().components[0].heal_state is HealState.FATAL, 10)
    assert engine.statuses()["liveness"] is Status.NOT_SERVING
    assert "crashy" in engine.snapshot().liveness_reason
    backoffs = [e for e in engine.events.since(component="crashy") if e.new == "BACKOFF"]
    assert len(backoffs) == 2
    assert EventKind.ESCALATION in event_kinds(engine, "crashy")
    assert engine.supervisor.children["crashy"].restarts == 3
    # An operator heal clears the escalation (and the child crashes again, honestly).
    engine.heal("crashy")
    await eventually(lambda: engine.statuses()["liveness"] is Status.SERVING)


async def test_backoff_delays_grow(engines: list[HealthEngine]) -> None:
    engine = await start_engine(engines, components=[crashy(max_attempts=4, backoff_cap_s=1.0)])
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
    engine = await start_engine(
        engines,
        level_recovery_s=0,
        components=[
            {"name": "db", "checks": [slow_flag_check(flag)], "degrades_to": "READ_ONLY"},
            healed_sleeper("api", depends_on=["db"]),
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
    engine = await start_engine(
        engines,
        components=[
            {"name": "db", "checks": [slow_flag_check(db_up) | {"interval_s": 60}]},
            {
                "name": "api",
                "depends_on": ["db"],
                "process": {"argv": SLEEPER},
                "checks": [slow_flag_check(api_up)],
                "healing": restart_healing(),
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
    engine = await start_engine(
        engines,
        components=[
            {
                "name": "svc",
                "process": {"argv": [PY, "-c", code]},
                "checks": [check],
                "healing": restart_healing(),
            }
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


async def test_a_healed_component_counts_as_started_only_after_passing_its_checks(
    engines: list[HealthEngine],
) -> None:
    engine = await start_engine(
        engines,
        components=[healed_sleeper()],
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
