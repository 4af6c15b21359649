"""The start gate: healthd dying between spawning a child and recording it leaves no orphan."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from healthd import ProcessConfig
from healthd._pidfile import RunDir, cmdline
from healthd._supervisor import Child, Supervisor
from tests.conftest import python_env
from tests.healthd_util import assert_no_pid, eventually, pid_alive

REPO = Path(__file__).resolve().parents[3]
SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]
# A healthd that dies (os._exit, as kill -9 would) inside the record write, before the record is
# on disk ("before") or just after it ("after"): the child has been spawned either way.
DYING_HEALTHD = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from pathlib import Path
    from healthd import ProcessConfig
    from healthd._pidfile import RunDir
    from healthd._supervisor import Child

    class DyingRunDir(RunDir):
        def write(self, key, record):
            if sys.argv[2] == "after":
                super().write(key, record)
            print(record.pid, flush=True)
            os._exit(9)

    async def main():
        cfg = ProcessConfig(argv=json.loads(sys.argv[3]))
        child = Child("svc", cfg, records=DyingRunDir(Path(sys.argv[1])), sink=lambda _l: None,
                      log_path=Path(sys.argv[1]).parent / "svc.log")
        await child.start()

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("dies", ["before", "after"])
async def test_healthd_dying_before_the_record_is_written_leaves_no_orphan_and_no_duplicate(
    tmp_path: Path, dies: str
) -> None:
    import json

    run = tmp_path / "run"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DYING_HEALTHD, str(run), dies, json.dumps(SLEEP),
        cwd=REPO, env=python_env(), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 9
    pid = int(out.split()[0])
    try:
        # The child never ran its program: it exits as soon as the dead healthd's pipe closes.
        await eventually(lambda: not pid_alive(pid), 5)
        # A restarted healthd over the same run_dir starts exactly one child.
        sup = Supervisor(RunDir(run))
        child = Child("svc", ProcessConfig(argv=SLEEP), records=sup.records, sink=lambda _l: None)
        sup.add(child)
        assert await sup.start_all() == []
        await eventually(lambda: cmdline(child.pid or 0) == SLEEP, 5)
        assert list(RunDir(run).records()) == ["svc"]
        await sup.stop_all()
        assert_no_pid([child.pid or 0])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # only without the gate: the orphan this test is about


async def test_a_gated_child_runs_its_program_once_recorded(tmp_path: Path) -> None:
    runs = RunDir(tmp_path / "run")
    child = Child("svc", ProcessConfig(argv=SLEEP), records=runs, sink=lambda _l: None)
    await child.start()
    try:
        record = runs.live("svc")
        await eventually(lambda: cmdline(child.pid or 0) == SLEEP, 5)
        assert record is not None and record.pid == child.pid and record.argv == SLEEP
    finally:
        await child.stop()
        await child.close()


async def test_a_missing_program_fails_the_start_itself_behind_the_gate(tmp_path: Path) -> None:
    runs = RunDir(tmp_path / "run")
    for argv in (["no-such-program-vigil"], ["./no/such/file"]):
        child = Child("svc", ProcessConfig(argv=argv), records=runs, sink=lambda _l: None)
        with pytest.raises(FileNotFoundError):
            await child.start()
        assert not child.running and runs.records() == {}
        await child.close()


@pytest.mark.parametrize("script", ["#!/bin/sh\nexec sleep 60\n", "#!/bin/sh\nsleep 60\n"])
async def test_a_child_that_is_a_script_is_adopted_not_duplicated(tmp_path: Path, script: str) -> None:
    """A script's command line is its interpreter's (``/bin/sh ./svc``, or ``sleep 60`` after
    its exec), never its argv: a restarted healthd must still know it as the child it recorded,
    not leave it running unsupervised and start a second one on its port."""
    program = tmp_path / "svc"
    program.write_text(script)
    program.chmod(0o755)
    cfg = ProcessConfig(argv=[str(program)])
    first = Supervisor(RunDir(tmp_path / "run"))
    child = Child("svc", cfg, records=first.records, sink=lambda _l: None)
    first.add(child)
    pids: list[int] = []
    try:
        assert await first.start_all() == []
        pid = child.pid or 0
        pids.append(pid)
        await eventually(lambda: cmdline(pid) in (["/bin/sh", str(program)], ["sleep", "60"]), 5)
        # healthd dies (its Child objects are simply dropped); the next one starts over the run_dir.
        second = Supervisor(RunDir(tmp_path / "run"))
        again = Child("svc", cfg, records=second.records, sink=lambda _l: None)
        second.add(again)
        adopted = await second.start_all()
        pids.append(again.pid or 0)
        assert adopted == [again] and again.pid == pid, "adopted, not started twice"
        await second.stop_all()
        assert_no_pid(pids)
    finally:
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p, signal.SIGKILL)
