"""Supervisor mode: child processes started, watched, restarted and stopped by healthd.

Each child runs in its own session (process group), so stopping it signals the whole group
and grandchildren die with it: no orphans. Exit is noticed at once: a child healthd started
is awaited (death is an event); a child adopted from a previous healthd (not our child, so
not awaitable) is watched through a pidfd, which becomes readable when it exits. Output goes
to a per-child log file (`healthd._output`), which healthd follows and forwards prefixed.

A child outlives healthd when healthd has a ``run_dir`` (`healthd._pidfile` records it and
the next healthd adopts it); without one (tests) it is told healthd's pid and shuts itself
down when healthd is gone, so nothing is leaked.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from healthd._config import ProcessConfig
from healthd._gate import StartGate, close_quietly, ensure_executable
from healthd._output import LineSink, OutputLog
from healthd._pidfile import CHILD_TOKEN_ENV, ChildRecord, RunDir
from healthd._process import Proc, group_gone, signal_group, terminate_foreign
from services.common import SUPERVISOR_PID_ENV, get_logger

_log = get_logger("vigil.healthd.supervisor")
PYTHON_PLACEHOLDER = "{python}"
"""An argv item replaced by healthd's own interpreter, so children run in the same venv."""
ExitCallback = Callable[[str, int | None], Awaitable[None] | None]
"""``on_exit(name, code)``: code as `describe_exit` takes it, None when unknown (adopted child)."""
_TEMP_LOGS: Path | None = None
SHUTTING_DOWN = "healthd is shutting down"


def _temp_log_dir() -> Path:
    """One private directory per healthd for the logs of children without a ``log_dir``."""
    global _TEMP_LOGS
    if _TEMP_LOGS is None:
        _TEMP_LOGS = Path(tempfile.mkdtemp(prefix="vigil-healthd-logs-"))
    return _TEMP_LOGS


def stderr_sink(line: str) -> None:
    """Default sink: the line to healthd's stderr, flushed (children's logs interleave by line)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class ShuttingDown(RuntimeError):
    """A start asked of a child after healthd's shutdown began (`Child.retire`)."""

    def __init__(self) -> None:
        super().__init__(SHUTTING_DOWN)


class Child:
    """One supervised process (one replica of a component).

    Invariant: ``_proc`` is the current process (or None before the first start); ``_stopping``
    is True while healthd itself is terminating it, so its exit is not reported as a death.
    Once ``retired`` (shutdown began) no process is spawned any more: a start raises
    `ShuttingDown`; one already spawning holds the lock, so the final `stop` (which takes it)
    comes after it and stops that process too.
    ``served`` is set by the engine once this process passed its checks; it is reset on each
    start (a permanent start-up error is an exit before ever serving).
    """

    def __init__(
        self,
        name: str,
        cfg: ProcessConfig,
        *,
        sink: LineSink = stderr_sink,
        on_exit: ExitCallback | None = None,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        log_max_bytes: int = 4 << 20,
        records: RunDir | None = None,
        key: str | None = None,
        replica: int = 1,
        component: str | None = None,
    ) -> None:
        self.name = name
        self.replica = replica
        self.component = component or name
        self.key = key or name.replace("/", "_")
        self._cfg = cfg
        self._env = dict(env or {})
        self._on_exit = on_exit
        self._records = records
        self.output = OutputLog(log_path or _temp_log_dir() / f"{self.key}.log", name, sink, log_max_bytes)
        self._proc: Proc | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._lock = asyncio.Lock()  # serialises start/stop/restart of this child
        self.started_at: float | None = None
        self.restarts = 0
        self.served = False
        self.retired = False
        self._token = ""  # of the current process (ChildRecord.token)
        self.argv = [sys.executable if arg == PYTHON_PLACEHOLDER else arg for arg in cfg.argv]

    @property
    def grace_s(self) -> float:
        """Time between SIGTERM and SIGKILL when stopping it."""
        return self._cfg.grace_s

    @property
    def pid(self) -> int | None:
        """Pid of the current process, if one was started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """Exit code of the last process (negative: killed by that signal); None while running."""
        return self._proc.code if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.running

    def liveness(self) -> tuple[bool, str]:
        """(alive, description) for the process check."""
        proc = self._proc
        if proc is None:
            return False, "not started"
        if proc.running:
            return True, f"running (pid {proc.pid}{', adopted' if proc.adopted else ''})"
        return False, describe_exit(proc.code)

    async def start(self) -> None:
        """Start the process (no-op if running)."""
        async with self._lock:
            await self._start_locked()

    def retire(self) -> None:
        """Shutdown began: never spawn again (see the class invariant)."""
        self.retired = True

    async def _start_locked(self) -> None:
        if self.retired:
            raise ShuttingDown()
        if self.running:
            return
        env = {**os.environ, **self._cfg.env, **self._env}
        if self._records is None:
            # No record to adopt from: the child must not outlive us (see SUPERVISOR_PID_ENV).
            env[SUPERVISOR_PID_ENV] = str(os.getpid())
        else:
            env.pop(SUPERVISOR_PID_ENV, None)
        self._token = secrets.token_hex(16)
        env[CHILD_TOKEN_ENV] = self._token  # how a restarted healthd knows it (ChildRecord.token)
        self.output.follow(from_end=False)
        # With records, the child waits behind a gate until its record is written (`healthd._gate`).
        gate = None
        if self._records is not None:
            ensure_executable(self.argv[0], env.get("PATH"), self._cfg.cwd)
            gate = StartGate()
        try:
            out = self.output.open_for_child()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *(self.argv if gate is None else gate.argv(self.argv)),
                    stdin=asyncio.subprocess.DEVNULL if gate is None else gate.read_fd,
                    stdout=out,
                    stderr=out,
                    cwd=self._cfg.cwd,
                    env=env,
                    start_new_session=True,  # own process group: signals reach grandchildren too
                )
            finally:
                os.close(out)
            try:
                self._begin(Proc(proc.pid, proc))  # writes the record
            except BaseException:
                close_quietly(gate)  # never released: it exits; make sure of it
                signal_group(proc.pid, signal.SIGKILL)
                raise
            if gate is not None:
                gate.open()
        finally:
            close_quietly(gate)

    def _begin(self, proc: Proc) -> None:
        # The record first: a process is ours (``_proc``) only once a restarted healthd can find it.
        if self._records is not None and proc.started is not None:
            record = ChildRecord(
                self.component,
                self.replica,
                proc.pid,
                proc.started,
                self.argv,
                self._ports(),
                os.getpid(),
                self._fingerprint(),
                self._token,
            )
            self._records.write(self.key, record)
        self._proc = proc
        self.started_at = time.monotonic()
        self._stopping = False
        self.served = False
        self._spawn(self._reap(proc))

    def _ports(self) -> dict[str, int]:
        """The ports this child is told in its config env (``server__port``, ...): what it owns."""
        prefix = self._cfg.env_prefix or ""
        env = {**self._cfg.env, **self._env}
        return {
            k.removeprefix(prefix).lower(): int(v)
            for k, v in env.items()
            if prefix and k.startswith(prefix) and k.endswith("PORT") and v.isdigit()
        }

    def _fingerprint(self) -> str:
        """Digest of what the child was started with beyond argv: its configured env and the
        variables of its own prefix it inherits from healthd (``VIGIL_WORKFLOW_SERVER__PORT``
        of make run: a child listening on an old port must be replaced, not adopted)."""
        prefix = self._cfg.env_prefix
        inherited = {k: v for k, v in os.environ.items() if prefix and k.startswith(prefix)}
        env = sorted({**inherited, **self._cfg.env, **self._env}.items())
        return hashlib.sha256(json.dumps([env, str(self._cfg.cwd)]).encode()).hexdigest()[:16]

    async def adopt(self, record: ChildRecord) -> bool:
        """Take over a live child recorded by a previous healthd; False if it was started with
        other argv or env (the config changed: the caller stops it and starts a fresh one)."""
        async with self._lock:
            if self.running or record.argv != self.argv or record.fingerprint != self._fingerprint():
                return False
            self.output.follow(from_end=True)
            self._token = record.token  # what its environment carries
            self._begin(Proc(record.pid))
            # It passed its checks under the previous healthd or not; either way it is no
            # fresh start that could fail permanently.
            self.served = True
            return True

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reap(self, proc: Proc) -> None:
        code = await proc.wait()
        self.output.drain()  # its last words (a start-up error) before the exit is reported
        if self._stopping or proc is not self._proc:
            return  # an exit healthd caused is not a death
        if self._records is not None:
            self._records.remove(self.key)
        if self._on_exit is None:
            return
        result = self._on_exit(self.name, code)
        if result is not None:
            await result

    async def stop(self, grace_s: float | None = None) -> None:
        """SIGTERM the group, wait ``grace_s`` (config default), then SIGKILL; waits for exit."""
        async with self._lock:
            await self._stop_locked(self._cfg.grace_s if grace_s is None else grace_s)

    async def _stop_locked(self, grace_s: float) -> None:
        proc = self._proc
        if proc is None:
            return
        self._stopping = True
        if proc.running:
            signal_group(proc.pid, signal.SIGTERM)
            # A SIGSTOPped process cannot act on SIGTERM until continued.
            signal_group(proc.pid, signal.SIGCONT)
            try:
                async with asyncio.timeout(grace_s):  # not wait_for: see _checks.run_check
                    await proc.exited.wait()
            except TimeoutError:
                signal_group(proc.pid, signal.SIGKILL)
                await proc.exited.wait()
        # The leader is gone; make sure nothing else in its group outlives it.
        signal_group(proc.pid, signal.SIGKILL)
        await group_gone(proc.pid)
        if self._records is not None:
            self._records.remove(self.key)
        # Wait for the reaper, except the caller itself (on_exit may stop us).
        others = [t for t in self._tasks if t is not asyncio.current_task()]
        await asyncio.gather(*others, return_exceptions=True)

    async def close(self) -> None:
        """Stop following the output (after the last stop)."""
        await self.output.stop()

    async def restart(self) -> None:
        """Stop (graceful, then forced) and start again."""
        async with self._lock:
            await self._stop_locked(self._cfg.grace_s)
            await self._start_locked()
            self.restarts += 1


def describe_exit(code: int | None) -> str:
    """``exited with code 3``, ``killed by SIGKILL``, or ``exited`` when the code is unknown."""
    if code is None:
        return "exited (adopted process: exit status unknown)"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    """All children of a healthd in supervisor mode; started in order, stopped in reverse.

    With a `RunDir`, `start_all` first adopts each child a previous healthd left running
    (same pid and start time as recorded, same argv); a recorded child that is not adoptable
    (argv changed, component or replica no longer configured) is stopped first, so no
    duplicate ever runs and no port is held by a stranger.
    """

    def __init__(self, records: RunDir | None = None) -> None:
        self.children: dict[str, Child] = {}
        self.records = records

    def retire(self) -> None:
        """Shutdown began: no child is spawned any more, by anyone (heal, operator, start)."""
        for child in self.children.values():
            child.retire()

    def add(self, child: Child) -> None:
        """Register a child (start order is registration order)."""
        self.children[child.name] = child

    async def start_all(self) -> list[Child]:
        """Adopt or start every child in registration (dependency) order; returns the adopted."""
        adopted: list[Child] = []
        live = {} if self.records is None else self.records.records()
        keys = {c.key for c in self.children.values()}
        for key, record in live.items():
            if key not in keys:
                _log.warning("stopping %s (pid %d): no longer configured", record.component, record.pid)
                await terminate_foreign(record, 10.0)
                assert self.records is not None
                self.records.remove(key)
        for child in self.children.values():
            found = live.get(child.key)
            if found is not None:
                if await child.adopt(found):
                    _log.info("adopted %s (pid %d) from a previous healthd", child.name, found.pid)
                    adopted.append(child)
                    continue
                _log.warning("stopping %s (pid %d): started with another config", child.name, found.pid)
                await terminate_foreign(found, child.grace_s)
            await child.start()
        return adopted

    async def stop_all(self) -> None:
        """Retire every child, then stop them, dependents first (replicas of one component
        together); each gets its own grace period."""
        self.retire()
        groups: dict[str, list[Child]] = {}
        for child in self.children.values():
            groups.setdefault(child.component, []).append(child)
        for group in reversed(list(groups.values())):
            await asyncio.gather(*(c.stop() for c in group))
        await asyncio.gather(*(c.close() for c in self.children.values()))

    def pids(self) -> list[int]:
        """Pids of children that are currently running."""
        return [c.pid for c in self.children.values() if c.pid is not None and c.running]
