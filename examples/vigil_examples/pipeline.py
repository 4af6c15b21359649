"""A multi-step workflow (durable steps) and a process-isolated CPU-heavy one."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from services.workflow import RunContext, workflow


@workflow(
    description="Fetch, transform and summarize a list of items; each stage is a durable step.",
    input_schema={
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "string", "maxLength": 1000}, "maxItems": 1000},
            "delay_s": {"type": "number", "minimum": 0, "maximum": 10},
        },
        "required": ["items"],
        "additionalProperties": False,
    },
    timeout_s=120,
    run_timeout_s=600,
)
async def pipeline(ctx: RunContext) -> Any:
    items = [str(i) for i in ctx.params["items"]]
    delay = float(ctx.params.get("delay_s", 0))

    async def fetch() -> list[str]:
        await asyncio.sleep(delay)  # stands for I/O
        return [i.strip() for i in items]

    fetched = await ctx.step("fetch", fetch)

    async def transform() -> list[str]:
        await asyncio.sleep(delay)
        return [s.upper() for s in fetched]

    transformed = await ctx.step("transform", transform)

    async def summarize() -> dict[str, int]:
        await asyncio.sleep(delay)
        return {"count": len(transformed), "chars": sum(len(s) for s in transformed)}

    summary = await ctx.step("summarize", summarize)
    return {"items": transformed, "summary": summary}


@workflow(
    description="Iterated SHA-256 of `data` (CPU-bound, runs in a limited worker process).",
    input_schema={
        "type": "object",
        "properties": {
            "data": {"type": "string", "maxLength": 10000},
            "rounds": {"type": "integer", "minimum": 1, "maximum": 100000000},
        },
        "required": ["data", "rounds"],
        "additionalProperties": False,
    },
    isolation="process",
    cpu_time_s=5,
    memory_mb=256,
    timeout_s=60,
)
def digest(params: dict[str, Any]) -> Any:
    value = str(params["data"]).encode()
    for _ in range(int(params["rounds"])):
        value = hashlib.sha256(value).digest()
    return {"sha256": value.hex(), "rounds": int(params["rounds"])}
