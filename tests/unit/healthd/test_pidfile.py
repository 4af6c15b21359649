"""Child records: a record names our process only while pid AND start time match."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from healthd._pidfile import ChildRecord, RunDir, cmdline, start_time


def test_live_record_of_this_process(tmp_path: Path) -> None:
    runs = RunDir(tmp_path / "run")
    started = start_time(os.getpid())
    assert started is not None
    runs.write("svc", ChildRecord("svc", 1, os.getpid(), started, cmdline(os.getpid()) or []))
    assert runs.live("svc") is not None
    assert list(runs.records()) == ["svc"]
    assert oct((tmp_path / "run").stat().st_mode & 0o777) == "0o700"


def test_a_reused_pid_is_not_ours(tmp_path: Path) -> None:
    runs = RunDir(tmp_path / "run")
    started = start_time(os.getpid())
    assert started is not None
    runs.write("svc", ChildRecord("svc", 1, os.getpid(), started - 1, []))  # another start time
    assert runs.live("svc") is None
    assert runs.read("svc") is None, "a stale record is removed"


def test_dead_and_unreadable_records(tmp_path: Path) -> None:
    runs = RunDir(tmp_path / "run")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = start_time(proc.pid) or 0
    proc.wait()
    runs.write("gone", ChildRecord("gone", 1, proc.pid, started, []))
    assert runs.live("gone") is None
    (tmp_path / "run" / "junk.json").write_text("{not json")
    assert runs.records() == {}
    assert start_time(2**22 + 1) is None


def test_a_record_naming_another_program_is_not_ours(tmp_path: Path) -> None:
    # A tampered (or hand-edited) record: right pid and start time of an unrelated process, the
    # service's argv. It must be neither adopted nor signalled (terminate_foreign trusts live()).
    runs = RunDir(tmp_path / "run")
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = start_time(stranger.pid)
        assert started is not None
        argv = [sys.executable, "-m", "services.workflow", "--config", "deploy/local/workflow.yaml"]
        runs.write("workflow-2", ChildRecord("workflow", 2, stranger.pid, started, argv))
        assert runs.live("workflow-2") is None
        assert runs.records() == {}
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


async def test_a_child_in_the_middle_of_its_exec_keeps_its_record(tmp_path: Path) -> None:
    """Just through the start gate, a child's command line reads empty while the kernel lays
    out its new program's arguments (milliseconds, longer on a loaded box): its record must
    not be dropped as "another process" then, or a restarted healthd duplicates it. Starting
    children back to back (each start loads the machine with the previous interpreters)."""
    from healthd import ProcessConfig
    from healthd._supervisor import Child

    runs = RunDir(tmp_path / "run")
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    cfg = ProcessConfig(argv=argv)
    children = [Child(f"svc{i}", cfg, records=runs, sink=lambda _l: None) for i in range(16)]
    lost: list[str] = []
    try:
        for child in children:
            await child.start()
            # Asked over and over until the exec is done, so the empty moment is seen.
            deadline = time.monotonic() + 10
            while cmdline(child.pid or 0) != argv and time.monotonic() < deadline:
                if runs.live(child.key) is None:
                    lost.append(child.key)
                    break
        assert lost == []
    finally:
        for child in children:
            await child.stop()
            await child.close()
