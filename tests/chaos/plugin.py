"""The drill workflow: two durable steps that record each execution in a ledger file.

The ledger (``CHAOS_LEDGER``: one ``run_id step`` line per execution, appended with a
single write so concurrent lines never interleave) is what counts duplicated step
executions across crashes of the workflow service.

The side-effect log (``CHAOS_STARTS``, when set) has a ``start`` line as a body begins and an
``end`` line as it returns, each naming the replica (``CHAOS_REPLICA``) and the lease epoch
(``ctx.fencing_token``) it runs under; O_APPEND orders the lines of all replicas as they
happened. Step and run results carry the epoch too, so an audit can tell whose write landed.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from services.workflow import RunContext, workflow


def _append(variable: str, line: str) -> None:
    path = os.environ.get(variable)
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{line}\n".encode())
        finally:
            os.close(fd)


def _record(run_id: str, step: str) -> None:
    _append("CHAOS_LEDGER", f"{run_id} {step}")


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

        async def body(step: str = step) -> dict[str, Any]:
            who = f"{ctx.run_id} {step} {os.environ.get('CHAOS_REPLICA', '-')} {ctx.fencing_token}"
            _append("CHAOS_STARTS", f"start {who}")
            await asyncio.sleep(delay)
            _record(ctx.run_id, step)
            _append("CHAOS_STARTS", f"end {who}")
            return {"step": step, "epoch": ctx.fencing_token}

        await ctx.step(step, body)
    return {"steps": 2, "epoch": ctx.fencing_token}
