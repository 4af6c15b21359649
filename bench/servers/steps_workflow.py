"""A three-step durable workflow for the ``workflow.steps`` benchmark (loaded by config)."""

from __future__ import annotations

from typing import Any

from services.workflow import RunContext, workflow


@workflow(description="Three durable steps, each persisted before the next.", timeout_s=10)
async def three_steps(ctx: RunContext) -> Any:
    total = 0
    for i in range(3):
        total += await ctx.step(f"step{i}", lambda i=i: i + 1)
    return {"total": total}
