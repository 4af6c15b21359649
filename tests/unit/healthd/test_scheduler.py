"""Scheduler: fixed grid (no drift), jitter, concurrency, hung targets, event streams."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

from healthd import CheckResult, Status
from healthd._config import ExecCheckConfig
from healthd._scheduler import SPREAD_S, Scheduler
from tests.clock import FakeClock


class Probe:
    """A fault-injectable check: records (fake) start times; can hang or take time."""

    def __init__(self, clock: FakeClock, hang: bool = False, cost: float = 0.0) -> None:
        self.clock, self.hang, self.cost = clock, hang, cost
        self.starts: list[float] = []

    async def check(self, timeout_s: float) -> CheckResult:
        self.starts.append(self.clock.now)
        if self.hang:
            await asyncio.Event().wait()
        if self.cost:
            await self.clock.sleep_until(self.clock.now + self.cost)  # the run takes fake time
        return CheckResult(Status.SERVING)

    async def close(self) -> None:
        return None


def _cfg(**kw: object) -> ExecCheckConfig:
    return ExecCheckConfig.model_validate({"kind": "exec", "argv": ["x"], **kw})


async def _run(clock: FakeClock, seconds: float, step: float = 0.125) -> None:
    await clock.run_for(0)  # let freshly started tasks reach their first sleep
    for _ in range(round(seconds / step)):
        await clock.run_for(step)


async def test_runs_stay_on_grid_despite_slow_checks() -> None:
    clock = FakeClock(0.0)
    probe = Probe(clock, cost=0.3)  # every run costs 0.3 s: now + interval would drift
    sched = Scheduler(clock, lambda *_: None)
    sched.add("a", 0, probe, _cfg(interval_s=1.0, timeout_s=60, initial_delay_s=0.5))
    sched.start()
    await _run(clock, 5.0)
    await sched.stop()
    assert [round(t, 6) for t in probe.starts] == [0.5, 1.5, 2.5, 3.5, 4.5]


async def test_overrun_skips_missed_slots_instead_of_bunching() -> None:
    clock = FakeClock(0.0)
    probe = Probe(clock, cost=2.5)
    sched = Scheduler(clock, lambda *_: None)
    sched.add("a", 0, probe, _cfg(interval_s=1.0, timeout_s=60))
    sched.start()
    await _run(clock, 7.0)
    await sched.stop()
    assert [round(t, 6) for t in probe.starts][:3] == [0.0, 3.0, 6.0]


async def test_jitter_delays_each_run_without_accumulating() -> None:
    clock = FakeClock(0.0)
    probe = Probe(clock)
    sched = Scheduler(clock, lambda *_: None, rng=random.Random(3))
    sched.add("a", 0, probe, _cfg(interval_s=1.0, jitter_s=0.5))
    sched.start()
    await _run(clock, 10.0, step=1 / 64)
    await sched.stop()
    offsets = [t - k for k, t in enumerate(probe.starts)]
    assert len(probe.starts) == 10
    assert all(0 <= o <= 0.5 + 1 / 64 for o in offsets)
    assert max(offsets) - min(offsets) > 0.1  # it does jitter


async def test_hung_check_costs_its_timeout_and_never_blocks_others() -> None:
    clock = FakeClock(0.0)
    hung, fine = Probe(clock, hang=True), Probe(clock)
    results: list[tuple[str, CheckResult]] = []
    sched = Scheduler(clock, lambda comp, _i, r: results.append((comp, r)))
    sched.add("hung", 0, hung, _cfg(interval_s=1.0, timeout_s=0.05))
    sched.add("fine", 0, fine, _cfg(interval_s=1.0))
    sched.start()
    await _run(clock, 2.9)
    # Real time is needed for the hung check's timeout (asyncio.wait_for), fake time for the grid.
    for _ in range(50):
        await asyncio.sleep(0.01)
        if any(c == "hung" for c, _ in results):
            break
    await sched.stop()
    assert len(fine.starts) == 3  # unaffected by the hung neighbour
    hung_results = [r for c, r in results if c == "hung"]
    assert hung_results and hung_results[0].status is Status.NOT_SERVING
    assert "timed out" in hung_results[0].message


async def test_paused_component_is_not_checked() -> None:
    clock = FakeClock(0.0)
    probe = Probe(clock)
    paused = {"a"}
    sched = Scheduler(clock, lambda *_: None, paused=paused.__contains__)
    sched.add("a", 0, probe, _cfg(interval_s=1.0))
    sched.start()
    await _run(clock, 3.0)
    assert probe.starts == []
    paused.clear()
    await _run(clock, 2.0)
    await sched.stop()
    assert len(probe.starts) == 2


async def test_stream_results_reach_the_sink() -> None:
    clock = FakeClock(0.0)
    got: list[CheckResult] = []

    async def stream() -> AsyncIterator[CheckResult]:
        yield CheckResult(Status.SERVING)
        yield CheckResult(Status.NOT_SERVING, decisive=True)

    sched = Scheduler(clock, lambda _c, _i, r: got.append(r))
    sched.add_stream("a", 0, stream)
    sched.start()
    await clock.run_for(0)
    await sched.stop()
    assert [r.status for r in got] == [Status.SERVING, Status.NOT_SERVING]


async def test_stalled_reports_a_late_job() -> None:
    clock = FakeClock(0.0)
    sched = Scheduler(clock, lambda *_: None)
    sched.add("a", 0, Probe(clock), _cfg(interval_s=1.0))
    sched.start()
    await clock.run_for(0)
    assert sched.stalled(clock.now, slack_s=2.0) is None
    # The job waits for its slot at 1.0; judged at 4.0 it is 3 s late (its wake-up never came).
    assert "late" in (sched.stalled(4.0, slack_s=2.0) or "")
    await sched.stop()


async def test_stalled_reports_a_crashed_job_task() -> None:
    clock = FakeClock(0.0)

    def broken_sink(*_: object) -> None:
        raise RuntimeError("bug in the sink")

    sched = Scheduler(clock, broken_sink)
    sched.add("a", 0, Probe(clock), _cfg(interval_s=1.0))
    sched.start()
    await clock.run_for(0)
    assert "crashed" in (sched.stalled(clock.now, slack_s=10.0) or "")
    await sched.stop()


async def test_checks_of_many_components_start_spread_not_in_one_burst() -> None:
    # 100 probes of one target firing in the same instant: a burst every interval and 100
    # calls' memory held at once (bench healthd.memory). Spread over SPREAD_S, each on its grid.
    clock = FakeClock(0.0)
    probes = [Probe(clock) for _ in range(4)]
    sched = Scheduler(clock, lambda *_: None)
    for i, probe in enumerate(probes):
        sched.add(f"c{i}", 0, probe, _cfg(interval_s=1.0))
    sched.start()
    await _run(clock, 2.5, step=0.01)
    await sched.stop()
    firsts = [p.starts[0] for p in probes]
    # (the fake clock advances in 0.01 s steps)
    assert all(abs(t - i / 4 * SPREAD_S) <= 0.011 for i, t in enumerate(firsts)), firsts
    assert firsts[-1] > 0.1  # not one burst
    assert all(abs(p.starts[1] - p.starts[0] - 1.0) <= 0.011 for p in probes)  # then on its own grid
