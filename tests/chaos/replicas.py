"""Two workflow replicas sharing one run store, and the audit of what a stopped one did.

`ReplicaSet` runs the security service and N workflow processes (each its own instance_id
and port) on one SQLite file or one PostgreSQL database, unsupervised, with the drill
workflow's side-effect log (``CHAOS_STARTS``, see tests/chaos/plugin.py) shared by all.
`audit_fencing` reads that log and the runs as the service reports them:

    stale starts      step bodies started under an epoch older than one already seen for the
                      run (the lease had moved when they began): must be 0
    stale writes      steps (runs) whose stored result carries an epoch older than the newest
                      execution of that step (run): a write from a replica whose lease had
                      moved landed: must be 0
    interrupted       bodies in flight when their lease moved (a newer epoch started the same
                      step later): cut short (no end line) + ran to the end (result refused)
    under-counted     (run, step) pairs whose ``executions`` is below the starts in the log: must be 0
    begun, not run    (run, step) pairs counted once more than they ran: the begin committed, then
                      the replica was stopped before the body and woke up with its lease no longer
                      provably its own, so the body did not start (over-counting, never a stale body)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from google.protobuf import json_format, struct_pb2

from bench import LocalStack, ServerProcess, free_port, wait_serving
from bench._procs import python_env
from tests.chaos.drill import PLUGIN, TERMINAL, WORKFLOW
from vigil.workflow.v1 import workflow_pb2 as wpb
from vigil.workflow.v1 import workflow_pb2_grpc as wpb_grpc

__all__ = ["FenceReport", "ReplicaSet", "audit_fencing"]

SERVICE = "vigil.workflow.v1.WorkflowService"


class ReplicaSet:
    """Security + ``n`` workflow replicas on one store under ``root`` (real processes)."""

    def __init__(
        self,
        root: Path,
        *,
        n: int = 2,
        postgres_dsn: str | None = None,
        lease_s: float = 2.0,
        **workflow: Any,
    ) -> None:
        self.root = root
        self.starts = root / "starts.log"
        store: dict[str, Any] = {"store_path": str(root / "runs.db")}
        if postgres_dsn is not None:
            store = {"store_backend": "postgres", "postgres": {"dsn": postgres_dsn}}
        self.stack = LocalStack(
            root,
            supervised=False,
            workflow={
                "workflows": PLUGIN,
                "limits": {"poll_s": 0.2, "process_workers": 1, "lease_s": lease_s},
                **store,
                **workflow,
            },
        )
        self.token = self.stack.token
        self.names = [f"replica-{i}" for i in range(n)]
        self.ports = [free_port() for _ in range(n)]
        self.procs: dict[str, ServerProcess] = {}

    def address(self, i: int) -> str:
        return f"127.0.0.1:{self.ports[i]}"

    async def start(self, wait_s: float = 60.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        security = ServerProcess(
            ["-m", "services.security", "--config", str(self.stack.security_config())], name="security"
        )
        self.procs["security"] = security
        await asyncio.to_thread(security.start, wait_s)
        base = yaml.safe_load(self.stack.workflow_config().read_text())
        for i, name in enumerate(self.names):
            config = {**base, "instance_id": name, "server": {**base["server"], "port": self.ports[i]}}
            path = self.root / f"workflow-{name}.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            env = python_env(CHAOS_STARTS=str(self.starts), CHAOS_REPLICA=name)
            proc = ServerProcess(["-m", "services.workflow", "--config", str(path)], env=env, name=name)
            self.procs[name] = proc
            await asyncio.to_thread(proc.start, wait_s)
            await wait_serving(self.address(i), SERVICE, wait_s)

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop(15)

    def log_tail(self, name: str) -> str:
        return "".join(self.procs[name].tail)


@dataclass
class Load:
    """Bounded StartRun callers spread over the replicas; records what was acknowledged."""

    replicas: ReplicaSet
    delay_s: float = 0.3
    concurrency: int = 4
    accepted: list[str] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    sent: int = 0

    def __post_init__(self) -> None:
        self._channels = [
            grpc.aio.insecure_channel(self.replicas.address(i)) for i in range(len(self.replicas.names))
        ]
        self._stubs = [wpb_grpc.WorkflowServiceStub(c) for c in self._channels]
        self._metadata = (("authorization", f"Bearer {self.replicas.token}"),)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, max_requests: int = 2000, max_s: float = 150.0) -> None:
        deadline = time.monotonic() + max_s
        params = struct_pb2.Struct()
        params.update({"delay_s": self.delay_s})

        async def caller(k: int) -> None:
            i = k
            while not self._stop.is_set() and self.sent < max_requests and time.monotonic() < deadline:
                self.sent += 1
                i += 1
                stub = self._stubs[i % len(self._stubs)]
                request = wpb.StartRunRequest(
                    workflow=WORKFLOW, params=params, idempotency_key=uuid.uuid4().hex
                )
                try:
                    reply = await stub.StartRun(request, metadata=self._metadata, timeout=3)
                except grpc.aio.AioRpcError as exc:
                    self.refused[exc.code().name] += 1
                    await asyncio.sleep(0.05)
                    continue
                self.accepted.append(reply.run.run_id)
                await asyncio.sleep(0.05)

        self._tasks = [asyncio.ensure_future(caller(k)) for k in range(self.concurrency)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def final_runs(self, settle_s: float = 60.0) -> tuple[dict[str, wpb.Run], list[str]]:
        """Every accepted run once terminal (asked of any replica that answers); and those
        still unfinished (or unknown) after ``settle_s``: lost."""
        done: dict[str, wpb.Run] = {}
        pending = list(dict.fromkeys(self.accepted))
        deadline = time.monotonic() + settle_s
        while pending and time.monotonic() < deadline:
            still = []
            for run_id in pending:
                run = await self._get(run_id)
                if run is not None and run.state in TERMINAL:
                    done[run_id] = run
                else:
                    still.append(run_id)
            pending = still
            if pending:
                await asyncio.sleep(0.25)
        return done, pending

    async def _get(self, run_id: str) -> wpb.Run | None:
        for stub in self._stubs:
            try:
                reply = await stub.GetRun(
                    wpb.GetRunRequest(run_id=run_id), metadata=self._metadata, timeout=3
                )
            except grpc.aio.AioRpcError:
                continue
            return reply.run
        return None

    async def close(self) -> None:
        await self.stop()
        for channel in self._channels:
            await channel.close()


@dataclass
class FenceReport:
    starts: int = 0
    stale_starts: int = 0
    stale_writes: int = 0
    interrupted_cut_short: int = 0
    interrupted_ran_to_end: int = 0
    executions_mismatch: int = 0
    """Under-counted pairs (executions < starts)."""
    begun_not_run: int = 0
    takeovers: int = 0
    """(run, step) pairs started under more than one epoch."""
    details: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.starts} step starts; stale starts {self.stale_starts}; "
            f"stale writes {self.stale_writes}; "
            f"interrupted mid-body {self.interrupted_cut_short + self.interrupted_ran_to_end} "
            f"({self.interrupted_cut_short} cut short, {self.interrupted_ran_to_end} ran on, refused); "
            f"executions < starts {self.executions_mismatch}, > starts {self.begun_not_run}"
        )


def _epoch(value: Any) -> int:
    return int(value.get("epoch", -1)) if isinstance(value, dict) else -1


def audit_fencing(starts_log: Path, runs: dict[str, wpb.Run]) -> FenceReport:
    """Compare the side-effect log with the runs as stored (see the module docstring)."""
    report = FenceReport()
    lines = starts_log.read_text().splitlines() if starts_log.exists() else []
    newest: dict[str, int] = defaultdict(int)  # run -> newest epoch seen so far (log order)
    started: dict[tuple[str, str], list[int]] = defaultdict(list)  # (run, step) -> epochs, in order
    ended: set[tuple[str, str, int]] = set()
    for line in lines:
        kind, run_id, step, _replica, epoch_text = line.split()
        epoch = int(epoch_text)
        if kind == "start":
            report.starts += 1
            if epoch < newest[run_id]:
                report.stale_starts += 1
                report.details.append(f"stale start: {line} after epoch {newest[run_id]}")
            newest[run_id] = max(newest[run_id], epoch)
            started[(run_id, step)].append(epoch)
        else:
            ended.add((run_id, step, epoch))
    for (run_id, step), epochs in started.items():
        if len(set(epochs)) > 1:
            report.takeovers += 1
        for k, epoch in enumerate(epochs):
            if any(later > epoch for later in epochs[k + 1 :]):
                if (run_id, step, epoch) in ended:
                    report.interrupted_ran_to_end += 1
                else:
                    report.interrupted_cut_short += 1
    for run_id, run in runs.items():
        steps = {s.name: s for s in run.steps}
        for step in {s for (r, s) in started if r == run_id} | set(steps):
            epochs = started.get((run_id, step), [])
            record = steps.get(step)
            if record is not None and record.executions > len(epochs):
                report.begun_not_run += record.executions - len(epochs)
            elif record is None or record.executions < len(epochs):
                report.executions_mismatch += 1
                report.details.append(
                    f"{run_id} {step}: executions {record and record.executions} vs {len(epochs)} starts"
                )
            if record is None or not record.completed or not epochs:
                continue
            if _epoch(json_format.MessageToDict(record.result)) < max(epochs):
                report.stale_writes += 1
                report.details.append(f"stale step result: {run_id} {step} {record.result}")
        succeeded = run.state == wpb.RUN_STATE_SUCCEEDED and newest.get(run_id)
        if succeeded and _epoch(json_format.MessageToDict(run.result)) < newest[run_id]:
            report.stale_writes += 1
            report.details.append(f"stale run result: {run_id} {run.result}")
    return report
