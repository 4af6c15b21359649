"""The shipped client retries StartRun under its own idempotency key (issue 12): a server
restarted mid-load costs the caller no failed call and no second run."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from services.common import ResourceExhausted, Unavailable
from services.workflow.client import StartRetry, WorkflowClient, pb
from tests.integration.workflow.conftest import SecurityEnv, StartWorkflow, client, free_port


async def test_start_run_survives_a_server_restart_without_duplicates(
    start_workflow: StartWorkflow, security: SecurityEnv, tmp_path
) -> None:
    port = free_port()
    store = str(tmp_path / "restarted.db")
    overrides = {"server": {"port": port}, "store_path": store}
    app = await start_workflow(security.address, **overrides)
    calls, failed = 60, []
    done = asyncio.Event()

    async def caller(c: WorkflowClient, ids: range) -> None:
        for i in ids:
            try:
                await c.start_run("echo", {"i": i}, labels={"call": str(i)})
            except Exception as exc:  # the figure under test: every failed call is counted
                failed.append(f"{i}: {exc!r}")
            await asyncio.sleep(0.02)

    async with WorkflowClient(f"127.0.0.1:{port}", token=security.alice, timeout_s=5) as c:
        load = asyncio.gather(*(caller(c, range(k, calls, 4)) for k in range(4)))
        await asyncio.sleep(0.3)  # runs accepted before the restart
        await app.server.stop(0)
        await asyncio.sleep(1.5)  # down: callers are refused (connection) and back off
        app = await start_workflow(security.address, **overrides)
        await load
        done.set()
        runs: list[pb.Run] = []
        token = ""
        while True:
            page, token = await c.list_runs(page_size=1000, page_token=token)
            runs += page
            if not token:
                break
    assert failed == []
    per_call = Counter(r.labels["call"] for r in runs)
    assert sorted(per_call) == sorted(str(i) for i in range(calls))
    assert set(per_call.values()) == {1}  # a retry never created a second run


class _Cap(random.Random):
    """Full jitter that always draws its cap: each blind backoff is as long as configured."""

    def uniform(self, a: float, b: float) -> float:
        return b


async def test_a_retry_goes_out_once_the_restarted_server_serves_not_after_its_backoff(
    start_workflow: StartWorkflow, security: SecurityEnv, tmp_path
) -> None:
    port = free_port()
    overrides = {"server": {"port": port}, "store_path": str(tmp_path / "back.db")}
    app = await start_workflow(security.address, **overrides)
    # A blind wait after the refused first attempt would be 8 s.
    retry = StartRetry(initial_backoff_s=8.0, max_backoff_s=8.0, max_total_s=30.0, rng=_Cap())
    loop = asyncio.get_running_loop()
    async with WorkflowClient(f"127.0.0.1:{port}", token=security.alice, timeout_s=5, start_retry=retry) as c:
        await c.start_run("echo", {"before": True})  # connected
        await app.server.stop(0)
        call = asyncio.ensure_future(c.start_run("echo", {"after": "restart"}, wait=True))
        # Past the channel's own retries (service config: 4 attempts within ~0.7 s): refused,
        # the call waits for its next attempt.
        await asyncio.sleep(2.0)
        assert not call.done()
        app = await start_workflow(security.address, **overrides)
        back = loop.time()
        run, created = await asyncio.wait_for(call, 20)
        late_s = loop.time() - back
    assert created and run.state == pb.RUN_STATE_SUCCEEDED
    assert late_s < 4.0, f"the retry went out {late_s:.2f} s after the server was back"


async def test_refusals_that_outlast_the_bounds_are_raised(
    start_workflow: StartWorkflow, security: SecurityEnv
) -> None:
    app = await start_workflow(security.address)
    app.gate.published = app.gate.published.READ_ONLY
    app.gate.retry_after_s = 0.2
    retry = StartRetry(max_attempts=3, max_total_s=5)
    async with client(app, security.alice, start_retry=retry) as c:
        with pytest.raises(Unavailable, match="READ_ONLY") as info:
            await c.start_run("echo", {})
    assert info.value.retry_after_s is not None


def test_waits_follow_retry_info_else_full_jitter() -> None:
    retry = StartRetry(initial_backoff_s=0.1, max_backoff_s=2.0, rng=random.Random(7))
    assert 1.5 <= retry.wait_s(1, Unavailable("down", retry_after_s=1.5)) <= 1.65
    assert 0.5 <= retry.wait_s(1, ResourceExhausted("shed", retry_after_s=0.5)) <= 0.55
    for attempt in range(1, 10):
        cap = min(2.0, 0.1 * 2 ** (attempt - 1))
        assert 0.0 <= retry.wait_s(attempt, Unavailable("no delay")) <= cap


async def test_bounded_attempts_and_no_retry_of_answers() -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    attempts = [0]

    async def refused() -> None:
        attempts[0] += 1
        raise Unavailable("down")

    with pytest.raises(Unavailable):
        await StartRetry(max_attempts=4).call(refused, sleep=sleep)
    assert attempts[0] == 4 and len(slept) == 3

    async def answer() -> None:
        attempts[0] += 1
        raise ValueError("not a refusal")

    attempts[0] = 0
    with pytest.raises(ValueError):
        await StartRetry().call(answer, sleep=sleep)
    assert attempts[0] == 1
