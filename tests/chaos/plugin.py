"""The drill workflow: two durable steps that record each execution in a ledger file.

The ledger (``CHAOS_LEDGER``: one ``run_id step`` line per execution, appended with a
single write so concurrent lines never interleave) is what counts duplicated step
executions across crashes of the workflow service.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from services.workflow import RunContext, workflow


def _record(run_id: str, step: str) -> None:
    path = os.environ.get("CHAOS_LEDGER")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{run_id} {step}\n".encode())
        finally:
            os.close(fd)


@workflow(
    description="Two ledger-recorded durable steps with a delay each (chaos drills).",
    input_schema={
        "type": "object",
        "properties": {"delay_s": {"type": "number", "minimum": 0, "maximum": 5}},
        "additionalProperties": False,
    },
    timeout_s=30,
    run_timeout_s=120,
)
async def counted(ctx: RunContext) -> Any:
    delay = float(ctx.params.get("delay_s", 0.1))
    for step in ("first", "second"):

        async def body(step: str = step) -> str:
            await asyncio.sleep(delay)
            _record(ctx.run_id, step)
            return step

        await ctx.step(step, body)
    return {"steps": 2}
