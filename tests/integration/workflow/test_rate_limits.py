"""Rate limits and shedding as a client sees them, on real workflow and security servers.

A refusal for the caller's rate limit is RESOURCE_EXHAUSTED with RetryInfo; the workflow
service's security client waits out short delays itself, the shipped WorkflowClient waits
out longer ones, and neither creates a second run. With the shipped defaults, 64 callers at
once all get their runs (nothing is shed).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from services.common import ResourceExhausted, RetryAfter
from services.workflow._app import WorkflowApp
from services.workflow.client import WorkflowClient, pb
from tests.integration.workflow.conftest import SecurityEnv, StartWorkflow, start_security

NO_RETRY = RetryAfter(max_attempts=1)
Stack = Callable[..., Awaitable[tuple[SecurityEnv, WorkflowApp]]]


@pytest.fixture
async def stack(start_workflow: StartWorkflow, tmp_path: Path) -> AsyncIterator[Stack]:
    """Start security (alice's key limited to ``alice_rate``) and a workflow server screened by it."""
    started: list[SecurityEnv] = []

    async def start(alice_rate: Any = None, **workflow: Any) -> tuple[SecurityEnv, WorkflowApp]:
        sec = await start_security(tmp_path, alice_rate=alice_rate)
        started.append(sec)
        return sec, await start_workflow(sec.address, **workflow)

    yield start
    for sec in started:
        await sec.server.stop(0)


async def test_short_rate_limit_delays_are_waited_out_by_the_service(stack: Stack) -> None:
    # 4/s, burst 1: the second start is refused by Screen with a 0.25 s delay, which the
    # workflow service's security client waits out; the caller never sees the refusal.
    sec, app = await stack({"rate_per_s": 4, "burst": 1})
    async with WorkflowClient(app.server.address, token=sec.alice, retry_after=NO_RETRY) as c:
        for _ in range(3):
            run, created = await c.start_run("echo", {"message": "hi"}, wait=True)
            assert created and run.state == pb.RUN_STATE_SUCCEEDED


async def test_long_delays_reach_the_client_with_retry_info_and_it_retries_once(stack: Stack) -> None:
    # 0.5/s: a 2 s delay is longer than the service waits (1 s), so the refusal reaches the
    # client with its RetryInfo.
    sec, app = await stack({"rate_per_s": 0.5, "burst": 1})
    async with WorkflowClient(app.server.address, token=sec.alice, retry_after=NO_RETRY) as bare:
        await bare.start_run("echo", {"message": "first"}, wait=True)
        with pytest.raises(ResourceExhausted) as refused:
            await bare.start_run("echo", {"message": "refused"}, wait=True)
        assert refused.value.advised and 1.0 < refused.value.retry_after_s <= 2.0
    await asyncio.sleep(2.1)  # the bucket is full again
    async with WorkflowClient(app.server.address, token=sec.alice) as patient:
        await patient.start_run("echo", {"message": "second"}, wait=True)
        run, created = await patient.start_run("echo", {"message": "third"}, wait=True, timeout_s=10)
        assert created and run.state == pb.RUN_STATE_SUCCEEDED  # waited ~2 s, then started once
        runs, _ = await patient.list_runs(workflow="echo", page_size=100)
    assert sorted(r.params["message"] for r in runs) == ["first", "second", "third"]


async def test_64_concurrent_starts_with_defaults_are_not_shed(stack: Stack) -> None:
    # The shipped rate_limit defaults (no key limit) and bulkhead defaults (no workflows config).
    sec, app = await stack(workflows={})
    async with WorkflowClient(app.server.address, token=sec.alice, timeout_s=60, retry_after=NO_RETRY) as c:

        async def caller(i: int) -> list[int | str]:
            out: list[int | str] = []
            for j in range(3):
                try:
                    run, _ = await c.start_run("echo", {"message": f"{i}-{j}"}, wait=True)
                    out.append(run.state)
                except ResourceExhausted as exc:
                    out.append(f"shed: {exc}")
            return out

        results = [r for rs in await asyncio.gather(*(caller(i) for i in range(64))) for r in rs]
    shed = [r for r in results if isinstance(r, str)]
    assert shed == [], f"{len(shed)} of {len(results)} starts shed, e.g. {shed[0]}"
    assert results == [pb.RUN_STATE_SUCCEEDED] * 64 * 3
