"""Scheduler: every check on its own interval, concurrently, without drift.

Run k of a check is due at ``start + spread + initial_delay + k * interval + U(0, jitter)``: the
grid is fixed at start, so slow checks or a late wake-up never shift later runs (no drift), and jitter
never accumulates. If a run overshoots its slot, missed slots are skipped, not bunched up.
Each check runs in its own task under its own timeout, so a hung target costs that check its
timeout and never delays any other. Event streams (a gRPC Watch) feed results the same way.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from healthd._checks import Check, run_check
from healthd._config import CheckConfig
from healthd._telemetry import check_span
from healthd._types import CheckResult
from services.common import Clock

SPREAD_S = 0.2
"""The grids of the jobs start spread over this long (job i of n at ``i / n`` of it, capped at
half an interval): n probes that all fired in one instant hit their targets as a burst every
interval and held n calls' memory at once (gRPC keeps that high-water mark, ~25 KB a call:
2 MB of a 100-component healthd). A probe takes about a millisecond, so 0.2 s is enough to
spread hundreds, and delays no first result noticeably."""

ResultSink = Callable[[str, int, CheckResult], None]
StreamFactory = Callable[[], AsyncIterator[CheckResult]]


@dataclass
class Job:
    """One scheduled check. ``due`` is the slot being waited for; ``busy_since`` is set while running."""

    component: str
    index: int
    check: Check
    cfg: CheckConfig
    due: float | None = None
    busy_since: float | None = None
    runs: int = 0


class Scheduler:
    """Runs checks on their grids and reports results to ``sink(component, index, result)``."""

    def __init__(
        self,
        clock: Clock,
        sink: ResultSink,
        *,
        paused: Callable[[str], bool] = lambda _name: False,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._sink = sink
        self._paused = paused
        self._rng = rng or random.Random()
        self.jobs: list[Job] = []
        self._streams: list[tuple[str, int, StreamFactory]] = []
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, component: str, index: int, check: Check, cfg: CheckConfig) -> None:
        """Schedule ``check`` (index ``index`` of ``component``'s checks)."""
        self.jobs.append(Job(component, index, check, cfg))

    def add_stream(self, component: str, index: int, stream: StreamFactory) -> None:
        """Feed every result ``stream()`` yields (events such as a broken Watch) to the sink."""
        self._streams.append((component, index, stream))

    def start(self) -> None:
        """Start one task per job and per stream."""
        start, n = self._clock.monotonic(), len(self.jobs)
        self._tasks += [
            asyncio.create_task(self._run(job, start + i / n * min(SPREAD_S, job.cfg.interval_s / 2)))
            for i, job in enumerate(self.jobs)
        ]
        self._tasks += [asyncio.create_task(self._pump(c, i, s)) for c, i, s in self._streams]

    async def stop(self) -> None:
        """Cancel every task and close the checks' resources."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await asyncio.gather(*(job.check.close() for job in self.jobs), return_exceptions=True)

    async def _run(self, job: Job, start: float) -> None:
        cfg = job.cfg
        base = start + cfg.initial_delay_s
        k = 0
        while True:
            job.due = base + k * cfg.interval_s + self._rng.uniform(0.0, cfg.jitter_s)
            await self._clock.sleep_until(job.due)
            job.due = None
            if not self._paused(job.component):
                await self.run_once(job)
            # Next slot on the fixed grid strictly after now: skipped slots are not made up.
            elapsed_slots = math.floor((self._clock.monotonic() - base) / cfg.interval_s) + 1
            k = max(k + 1, elapsed_slots)

    async def run_once(self, job: Job, *, on_grid: bool = True) -> CheckResult:
        """Run ``job`` once under its timeout and report the result.

        Only runs on the grid set ``busy_since`` (the watchdog's view of that job's task); an
        out-of-band run (`check_now`) may overlap one and must not clear its mark.
        """
        if on_grid:
            job.busy_since = self._clock.monotonic()
        cfg = job.cfg
        try:
            with check_span(job.component, cfg.name or cfg.kind, cfg.kind) as observed:
                result = await run_check(job.check, cfg.timeout_s)
                observed.result(result)
        finally:
            if on_grid:
                job.busy_since = None
        job.runs += 1
        self._sink(job.component, job.index, result)
        return result

    async def check_now(self, component: str) -> list[CheckResult]:
        """Run every check of ``component`` at once (outside the grid); results are reported too."""
        jobs = [j for j in self.jobs if j.component == component]
        return list(await asyncio.gather(*(self.run_once(j, on_grid=False) for j in jobs)))

    async def _pump(self, component: str, index: int, stream: StreamFactory) -> None:
        async for result in stream():
            if not self._paused(component):
                self._sink(component, index, result)

    def stalled(self, now: float, slack_s: float) -> str | None:
        """Why the scheduler looks stalled at ``now``, or None when it keeps time.

        A job is late when it has waited ``slack_s`` past its slot without waking, or has run
        ``slack_s`` beyond its own timeout (which `run_check` enforces, so this means the loop
        itself is stuck).
        """
        for job in self.jobs:
            if job.due is not None and now - job.due > slack_s:
                return f"{job.component} check {job.index} is {now - job.due:.1f}s late"
            if job.busy_since is not None and now - job.busy_since > job.cfg.timeout_s + slack_s:
                return f"{job.component} check {job.index} overran its timeout by {slack_s:g}s"
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                return f"a scheduler task crashed: {task.exception()!r}"
        return None
