"""Drill machinery: bounded StartRun load against the real stack, a fault, then an audit of
every accepted run, the step ledger and healthd's Watch, summarised as a `DrillReport`.

Definitions (what the table prints):
    sent       StartRun calls made (bounded in count and time; traffic on 127.0.0.1 only)
    accepted   calls answered OK with a run id (the service promised durability for these)
    succeeded  accepted runs that ended SUCCEEDED
    failed     refusals by status code, plus accepted runs that ended in another terminal
               state (``run:FAILED`` ...)
    lost       accepted runs that, after the stack healed, are unknown or never end (must be 0)
    dup steps  (run, step) pairs whose body ran more than once: allowed only for a step cut
               short by a crash (at-least-once for the unfinished step, ARCHITECTURE.md); shown as
               "N (M unrecorded)" where M counts pairs whose body ran more often than the
               service's own record of executions says: a re-run it did not know about (must be 0)
    detect/heal  seconds from the fault to NOT_SERVING / back to SERVING on healthd's Watch
    retried    UNAVAILABLE answers retried with the same idempotency key (``retry_unavailable``:
               what the shipped client does); only a call still refused after its retries fails
    gap s      the longest time after the fault without any good StartRun answer ("never":
               none came before the load stopped)
    @ready     refusals while healthd's ``readiness`` said SERVING (``watch_readiness``)
    dup runs   idempotency keys that got more than one run id (must be 0)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc

from bench import LocalStack
from services.common import FAST_RECONNECT
from vigil.workflow.v1 import workflow_pb2 as wpb
from vigil.workflow.v1 import workflow_pb2_grpc as wpb_grpc

__all__ = ["REPORTS", "Drill", "DrillReport", "render"]

SERVING, NOT_SERVING = hpb.HealthCheckResponse.SERVING, hpb.HealthCheckResponse.NOT_SERVING
TERMINAL = {wpb.RUN_STATE_SUCCEEDED, wpb.RUN_STATE_FAILED, wpb.RUN_STATE_CANCELLED, wpb.RUN_STATE_TIMED_OUT}
WORKFLOW = "chaos.counted"
PLUGIN = {WORKFLOW: {"handler": "tests.chaos.plugin:counted"}}


@dataclass
class DrillReport:
    name: str
    sent: int = 0
    accepted: int = 0
    succeeded: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    duplicated_steps: int = 0
    unrecorded_steps: int = 0
    detect_s: float | None = None
    heal_s: float | None = None
    note: str = ""
    retried: int = 0
    gap_s: float | None = None
    refused_ready: int | None = None
    """None unless the drill watched healthd's readiness."""
    duplicated_runs: int = 0


REPORTS: list[DrillReport] = []


def render(reports: list[DrillReport]) -> str:
    head = [
        "drill",
        "sent",
        "accepted",
        "succeeded",
        "failed (codes)",
        "lost",
        "dup steps",
        "detect s",
        "heal s",
        "retried",
        "gap s",
        "@ready",
        "dup runs",
    ]
    rows = [
        [
            r.name,
            str(r.sent),
            str(r.accepted),
            str(r.succeeded),
            ", ".join(f"{k} {v}" for k, v in sorted(r.failed.items())) or "-",
            str(r.lost),
            f"{r.duplicated_steps} ({r.unrecorded_steps} unrecorded)",
            "-" if r.detect_s is None else f"{r.detect_s:.2f}",
            "-" if r.heal_s is None else f"{r.heal_s:.2f}",
            str(r.retried),
            "-" if r.gap_s is None else "never" if math.isinf(r.gap_s) else f"{r.gap_s:.2f}",
            "-" if r.refused_ready is None else str(r.refused_ready),
            str(r.duplicated_runs),
        ]
        for r in reports
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [head, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    notes = [f"{r.name}: {r.note}" for r in reports if r.note]
    return "\n".join(lines + notes)


class Drill:
    """One drill against ``stack`` (already started, with the ``chaos.counted`` plugin)."""

    def __init__(
        self,
        name: str,
        stack: LocalStack,
        ledger: Path,
        *,
        concurrency: int = 4,
        delay_s: float = 0.1,
        retry_unavailable: bool = False,
    ):
        self.report = DrillReport(name)
        self.retry_unavailable = retry_unavailable
        self._runs_of: dict[str, set[str]] = {}  # idempotency key -> run ids answered
        self._good: list[float] = []  # perf_counter of each good answer
        self._ready: bool | None = None  # healthd's readiness, when watched
        self.stack = stack
        self.ledger = ledger
        self.concurrency = concurrency
        self.accepted: list[str] = []
        self.transitions: list[tuple[float, int]] = []
        self.fault_at: float | None = None
        self._executions: dict[str, int] = {}  # "run_id step" -> executions per the run's record
        params = struct_pb2.Struct()
        params.update({"delay_s": delay_s})
        self._params = params
        self._stop = asyncio.Event()
        self._load: list[asyncio.Task[None]] = []
        self._watches: list[asyncio.Task[None]] = []
        self._channel = grpc.aio.insecure_channel(stack.address("workflow"))
        self._stub = wpb_grpc.WorkflowServiceStub(self._channel)
        # One connection per caller (no shared subchannel): with replicas on one port the
        # kernel spreads them, so a killed replica hits the callers connected to it. The
        # reconnect options Vigil's own clients use: with gRPC's default backoff (1 s, growing)
        # the gap measured the drill's reconnect schedule (0.84-1.10 s after a kill -9 of the
        # workflow service), not the service, which answered again after 0.48 s.
        self._caller_channels = [
            grpc.aio.insecure_channel(
                stack.address("workflow"), options=[("grpc.use_local_subchannel_pool", 1), *FAST_RECONNECT]
            )
            for _ in range(concurrency)
        ]
        self._metadata = (("authorization", f"Bearer {stack.token}"),)

    # --- load --------------------------------------------------------------------------
    def start_load(self, max_requests: int = 3000, max_s: float = 60.0) -> None:
        """Start ``concurrency`` callers; they stop at `stop_load`, ``max_requests`` or ``max_s``."""
        deadline = time.monotonic() + max_s
        budget = [max_requests]

        async def caller(stub: wpb_grpc.WorkflowServiceStub) -> None:
            while not self._stop.is_set() and budget[0] > 0 and time.monotonic() < deadline:
                budget[0] -= 1
                self.report.sent += 1
                key = f"drill-{uuid.uuid4().hex}"
                request = wpb.StartRunRequest(workflow=WORKFLOW, params=self._params, idempotency_key=key)
                reply = await self._start(stub, request)
                if reply is None:
                    await asyncio.sleep(0.05)  # a refused client backs off a little, as real ones do
                    continue
                self._good.append(time.perf_counter())
                self._runs_of.setdefault(key, set()).add(reply.run.run_id)
                self.accepted.append(reply.run.run_id)
                await asyncio.sleep(0.02)

        stubs = [wpb_grpc.WorkflowServiceStub(c) for c in self._caller_channels]
        self._load += [asyncio.ensure_future(caller(stub)) for stub in stubs]

    async def _start(
        self, stub: wpb_grpc.WorkflowServiceStub, request: wpb.StartRunRequest
    ) -> wpb.StartRunResponse | None:
        """One StartRun, retried (same idempotency key, up to 10 s) on UNAVAILABLE if asked."""
        give_up = time.monotonic() + 10.0
        while True:
            try:
                return await stub.StartRun(request, metadata=self._metadata, timeout=5)
            except grpc.aio.AioRpcError as exc:
                retry = exc.code() == grpc.StatusCode.UNAVAILABLE and self.retry_unavailable
                if retry and time.monotonic() < give_up and not self._stop.is_set():
                    self.report.retried += 1
                    await asyncio.sleep(0.05)
                    continue
                self.report.failed[exc.code().name] += 1
                if self._ready:
                    self.report.refused_ready = (self.report.refused_ready or 0) + 1
                return None

    def watch_readiness(self) -> None:
        """Follow healthd's ``readiness`` (reconnecting: healthd itself may be killed)."""
        self.report.refused_ready = 0

        async def follow() -> None:
            while not self._stop.is_set():
                async with grpc.aio.insecure_channel(self.stack.address("healthd")) as channel:
                    with contextlib.suppress(grpc.aio.AioRpcError):
                        async for reply in hpb_grpc.HealthStub(channel).Watch(
                            hpb.HealthCheckRequest(service="readiness")
                        ):
                            self._ready = reply.status == SERVING
                self._ready = None
                await asyncio.sleep(0.2)

        self._watches.append(asyncio.ensure_future(follow()))

    async def stop_load(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._load)

    # --- observation -------------------------------------------------------------------
    def watch(self, service: str) -> None:
        """Record every status healthd's Watch reports for ``service`` (a broken stream ends it)."""

        async def follow() -> None:
            async with grpc.aio.insecure_channel(self.stack.address("healthd")) as channel:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    async for reply in hpb_grpc.HealthStub(channel).Watch(
                        hpb.HealthCheckRequest(service=service)
                    ):
                        self.transitions.append((time.perf_counter(), reply.status))

        self._watches.append(asyncio.ensure_future(follow()))

    def mark_fault(self) -> None:
        self.fault_at = time.perf_counter()

    def _detect_heal(self) -> None:
        if self.fault_at is None:
            return
        after = [t for t in self._good if t >= self.fault_at]
        marks = [self.fault_at, *after]
        # inf: no good answer at all between the fault and the end of the load ("never").
        self.report.gap_s = max(b - a for a, b in itertools.pairwise(marks)) if after else math.inf
        after = [(t, s) for t, s in self.transitions if t >= self.fault_at]
        down = next((t for t, s in after if s != SERVING), None)
        if down is not None:
            self.report.detect_s = down - self.fault_at
            up = next((t for t, s in after if s == SERVING and t > down), None)
            if up is not None:
                self.report.heal_s = up - self.fault_at

    # --- audit -------------------------------------------------------------------------
    async def finish(self, settle_s: float = 90.0) -> DrillReport:
        """Stop the load, wait for the stack to accept runs, then account for every accepted run."""
        await self.stop_load()
        await self.stack.wait_accepting(settle_s)
        deadline = time.monotonic() + settle_s
        pending = list(dict.fromkeys(self.accepted))
        self.report.accepted = len(pending)
        final: dict[str, int] = {}
        while pending and time.monotonic() < deadline:
            still = []
            for run_id in pending:
                try:
                    run = (
                        await self._stub.GetRun(
                            wpb.GetRunRequest(run_id=run_id), metadata=self._metadata, timeout=5
                        )
                    ).run
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.NOT_FOUND:
                        final[run_id] = -1  # accepted, then forgotten: lost
                        continue
                    still.append(run_id)
                    continue
                if run.state in TERMINAL:
                    final[run_id] = run.state
                    for step in run.steps:
                        self._executions[f"{run_id} {step.name}"] = step.executions
                else:
                    still.append(run_id)
            pending = still
            if pending:
                await asyncio.sleep(0.2)
        states = Counter(final.values())
        self.report.succeeded = states.pop(wpb.RUN_STATE_SUCCEEDED, 0)
        self.report.lost = states.pop(-1, 0) + len(pending)
        for state, n in states.items():
            self.report.failed[f"run:{wpb.RunState.Name(state).removeprefix('RUN_STATE_')}"] += n
        self.report.duplicated_steps, self.report.unrecorded_steps = self._duplicates()
        self.report.duplicated_runs = sum(1 for ids in self._runs_of.values() if len(ids) > 1)
        self._detect_heal()
        await self.close()
        REPORTS.append(self.report)
        return self.report

    def _duplicates(self) -> tuple[int, int]:
        """(pairs run more than once, pairs run more often than the service recorded)."""
        if not self.ledger.exists():
            return 0, 0
        counts = Counter(self.ledger.read_text().splitlines())
        dup = sum(1 for n in counts.values() if n > 1)
        unrecorded = sum(
            1 for key, n in counts.items() if key in self._executions and n > self._executions[key]
        )
        return dup, unrecorded

    async def close(self) -> None:
        """Cancel whatever still runs (idempotent; the fixture calls it after every drill)."""
        self._stop.set()
        for task in self._load + self._watches:
            task.cancel()
        await asyncio.gather(*self._load, *self._watches, return_exceptions=True)
        await self._channel.close()
        for channel in self._caller_channels:
            await channel.close()
