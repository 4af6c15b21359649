"""Workflows the CLI end-to-end tests register in the real stack (through VIGIL_WORKFLOW_WORKFLOWS).

The workflow service runs in another process, so the fault injector is a file: while the
path in ``params.fail_while`` exists, step ``two`` raises.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.workflow import RetrySettings, RunContext, workflow


class InjectedFault(ConnectionError):
    """A retryable failure (a dependency refusing), so the history shows the retry."""


@workflow(
    description="Two steps; step two fails while params.fail_while names an existing file.",
    retry=RetrySettings(max_attempts=2, initial_backoff_s=0.01, max_backoff_s=0.02),
)
async def stepper(ctx: RunContext) -> Any:
    one = await ctx.step("one", lambda: {"one": 1})

    def two() -> dict[str, int]:
        if Path(ctx.params["fail_while"]).exists():
            raise InjectedFault("step two: dependency refused")
        return {"two": 2}

    return {**one, **await ctx.step("two", two)}
