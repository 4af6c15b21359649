"""Workflows the integration tests register through the service config (the real plugin path).

The servers run in the test process, so these module-level records and switches are how a
test observes whether a handler ran and injects faults into it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from services.workflow import RetrySettings, RunContext, workflow

CALLS: list[str] = []
"""Run ids whose handler ran (counting)."""
CANCELLED: list[str] = []
"""Run ids whose sleeping handler received the cancellation."""
DEPENDENCY_UP = [False]
"""Fault injector of `dependent`: False makes every call fail like a dead dependency."""


def reset() -> None:
    CALLS.clear()
    CANCELLED.clear()
    DEPENDENCY_UP[0] = False


@workflow(description="Records that it ran and returns its params.")
async def counting(ctx: RunContext) -> Any:
    CALLS.append(ctx.run_id)
    return ctx.params


@workflow(description="Needs PRIVILEGED callers.", required_level="PRIVILEGED")
async def privileged(ctx: RunContext) -> Any:
    CALLS.append(ctx.run_id)
    return "ok"


@workflow(
    description="Sleeps until cancelled.",
    timeout_s=600,
    run_timeout_s=600,
    retry=RetrySettings(max_attempts=1),
)
async def sleeper(ctx: RunContext) -> Any:
    try:
        await asyncio.sleep(600)
    except asyncio.CancelledError:
        CANCELLED.append(ctx.run_id)
        raise
    return None


@workflow(
    description="Calls a dependency that a test switches off and on.", retry=RetrySettings(max_attempts=1)
)
async def dependent(ctx: RunContext) -> Any:
    CALLS.append(ctx.run_id)
    if not DEPENDENCY_UP[0]:
        raise ConnectionError("dependency refused the connection")
    return "served"


async def always_failing(ctx: RunContext) -> Any:
    CALLS.append(ctx.run_id)
    raise ConnectionError("always down")


@workflow(description="Fails with its params in the message (a handler leaking a secret).")
async def leaky(ctx: RunContext) -> Any:
    raise ValueError(f"cannot use {ctx.params.get('note')}")
