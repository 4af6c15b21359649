"""Supervisor with real child processes: exit events, prefixed logs, graceful/forced stop, no orphans."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from healthd import ProcessConfig
from healthd._output import LINE_LIMIT, TRUNCATED
from healthd._pidfile import RunDir
from healthd._supervisor import Child, ShuttingDown, Supervisor, describe_exit
from tests.healthd_util import assert_no_pid, eventually, pid_alive

PY = sys.executable


def _child(name: str, code: str, lines: list[str] | None = None, grace: float = 2.0, **kw: object) -> Child:
    cfg = ProcessConfig(argv=[PY, "-u", "-c", textwrap.dedent(code)], grace_s=grace)
    sink = lines.append if lines is not None else (lambda _line: None)
    return Child(name, cfg, sink=sink, **kw)  # type: ignore[arg-type]


async def test_output_is_forwarded_with_prefix() -> None:
    lines: list[str] = []
    child = _child("svc", "import sys; print('hello'); print('oops', file=sys.stderr)", lines)
    await child.start()
    await eventually(lambda: len(lines) == 2)
    await child.stop()
    assert sorted(lines) == ["[svc] hello", "[svc] oops"]


async def test_exit_is_an_event_noticed_at_once() -> None:
    exits: list[tuple[str, int]] = []
    child = _child("svc", "import time; time.sleep(30)", on_exit=lambda n, c: exits.append((n, c)))
    await child.start()
    assert child.liveness()[0]
    os.kill(child.pid or 0, signal.SIGKILL)
    await eventually(lambda: exits, timeout=2)
    assert exits == [("svc", -signal.SIGKILL)]
    assert child.liveness() == (False, "killed by SIGKILL")
    await child.stop()


async def test_stop_uses_sigterm_then_sigkill_after_grace() -> None:
    code = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print('ready', flush=True)
        time.sleep(60)
    """
    lines: list[str] = []
    child = _child("stubborn", code, lines, grace=0.3)
    await child.start()
    await eventually(lambda: lines)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await child.stop()
    assert loop.time() - t0 >= 0.3
    assert child.returncode == -signal.SIGKILL


async def test_graceful_child_exits_on_sigterm() -> None:
    code = """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        print('ready', flush=True)
        time.sleep(60)
    """
    lines: list[str] = []
    exits: list[int] = []
    child = _child("nice", code, lines, grace=10, on_exit=lambda _n, c: exits.append(c))
    await child.start()
    await eventually(lambda: lines)
    await child.stop()
    assert child.returncode == 0
    assert exits == []  # a stop healthd caused is not a death


async def test_stopped_child_is_continued_so_it_can_terminate() -> None:
    child = _child("frozen", "import time; print('ready', flush=True); time.sleep(60)", [], grace=5)
    await child.start()
    os.kill(child.pid or 0, signal.SIGSTOP)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await child.stop()
    assert loop.time() - t0 < 4  # SIGTERM acted on at once (after SIGCONT), no grace wait
    assert child.returncode == -signal.SIGTERM


async def test_restart_gives_a_new_pid_and_counts() -> None:
    child = _child("svc", "import time; time.sleep(60)")
    await child.start()
    old = child.pid
    await child.restart()
    assert child.pid != old and child.restarts == 1
    assert old is not None and not pid_alive(old)
    await child.stop()


async def test_no_orphans_grandchildren_die_with_the_group() -> None:
    code = f"""
        import subprocess, time
        p = subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(60)'])
        print(p.pid, flush=True)
        time.sleep(60)
    """
    lines: list[str] = []
    sup = Supervisor()
    sup.add(_child("a", code, lines))
    sup.add(_child("b", "import time; time.sleep(60)"))
    await sup.start_all()
    await eventually(lambda: lines)
    grandchild = int(lines[0].split()[1])
    pids = [*sup.pids(), grandchild]
    assert all(pid_alive(p) for p in pids)
    await sup.stop_all()
    assert_no_pid(pids)


def test_describe_exit() -> None:
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-9) == "killed by SIGKILL"


async def test_overlong_output_line_is_truncated_marked_and_forwarding_continues() -> None:
    lines: list[str] = []
    child = _child("svc", "print('x' * (3 << 20)); print('after')", lines)
    await child.start()
    await eventually(lambda: "[svc] after" in lines)
    await child.stop()
    assert lines == [f"[svc] {'x' * LINE_LIMIT}{TRUNCATED.format((3 << 20) - LINE_LIMIT)}", "[svc] after"]


async def test_a_child_started_with_other_inherited_settings_is_not_adopted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # make run's ports come from VIGIL_* in healthd's own env, which the child inherits: a
    # healthd restarted with VIGIL_X_SERVER__PORT moved must not adopt a child on the old port
    # (its private health port still answered, so the stack read HEALTHY on a dead port).
    cfg = ProcessConfig(argv=[PY, "-c", "import time; time.sleep(60)"], env_prefix="VIGIL_X_", grace_s=1)
    runs = RunDir(tmp_path / "run")
    monkeypatch.setenv("VIGIL_X_SERVER__PORT", "50051")
    first = Child("x", cfg, records=runs, sink=lambda _line: None, log_path=tmp_path / "x.log")
    await first.start()
    try:
        record = runs.live("x")
        assert record is not None
        same = Child("x", cfg, records=runs, sink=lambda _line: None, log_path=tmp_path / "x.log")
        monkeypatch.setenv("VIGIL_X_SERVER__PORT", "51051")
        moved = Child("x", cfg, records=runs, sink=lambda _line: None, log_path=tmp_path / "x.log")
        assert not await moved.adopt(record)
        monkeypatch.setenv("VIGIL_X_SERVER__PORT", "50051")
        assert await same.adopt(record)
        await same.close()
    finally:
        await first.stop()
        await first.close()


async def test_a_start_in_flight_when_shutdown_begins_is_stopped_and_none_begins_after() -> None:
    sup = Supervisor()
    child = _child("svc", "import time; time.sleep(60)")
    sup.add(child)
    starting = asyncio.ensure_future(child.start())
    await asyncio.sleep(0)  # the start holds the child's lock and is spawning
    await sup.stop_all()  # retires, then waits for the lock: the spawned process is stopped
    await starting
    assert child.pid is not None and not child.running
    assert_no_pid([child.pid])
    with pytest.raises(ShuttingDown, match="healthd is shutting down"):
        await child.start()
    with pytest.raises(ShuttingDown):
        await child.restart()
    assert not child.running
