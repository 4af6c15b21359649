"""One call of a workflow's handler and what becomes of its outcome.

`invoke` bounds an attempt by the per-attempt timeout and the run's deadline and runs it
inline or in the process pool; `fallback_change` walks the fallback chain after the last
attempt failed; `checked_result` turns a result the store must not take (not JSON, too
large) into the run's failure. The executor (`services.workflow._executor`) composes them
with the retries, the breaker and the run's state changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from services.common import FailedPrecondition
from services.workflow._context import RunContext
from services.workflow._history import HistoryType
from services.workflow._isolation import ProcessPool
from services.workflow._model import ErrorCategory, Run, RunChange, RunError
from services.workflow._policies import categorize, describe
from services.workflow._registry import Workflow, WorkflowRegistry
from services.workflow._states import RunState
from services.workflow._telemetry import fallback_span

__all__ = ["checked_result", "fallback_change", "invoke"]

Record = Callable[..., Awaitable[None]]
"""``record(run_id, kind, **fields)``: append a history event (the executor's, fenced)."""


async def invoke(wf: Workflow, ctx: RunContext, pool: ProcessPool | None) -> Any:
    """One attempt of one handler, bounded by the per-attempt timeout and the run deadline."""
    budget = wf.policy.timeout_s
    remaining = ctx.remaining()
    if remaining is not None:
        budget = min(budget, remaining)
    async with asyncio.timeout(budget):
        if wf.policy.isolation == "process":
            if pool is None or wf.ref is None:
                raise FailedPrecondition(f"workflow {wf.name!r} needs a process pool")
            p = wf.policy
            return await pool.run(
                wf.ref, ctx.params, cpu_time_s=p.cpu_time_s, memory_mb=p.memory_mb, wall_time_s=budget
            )
        assert wf.handler is not None  # guaranteed by the registry for inline workflows
        return await wf.handler(ctx)


async def fallback_change(
    run: Run,
    wf: Workflow,
    exc: Exception,
    *,
    registry: WorkflowRegistry,
    record: Record,
    call_other: Callable[[Run, Workflow], Awaitable[Any]],
) -> RunChange:
    """Try ``wf``'s fallback chain after ``exc``; a change to SUCCEEDED (recorded) or FAILED.

    ``call_other(run, workflow)`` runs one fallback workflow once (its own breaker, no
    retries and no fallbacks of its own)."""
    error = RunError(categorize(exc), describe(exc))
    for fb in wf.policy.fallback:
        if fb.workflow is None:
            await record(run.run_id, HistoryType.FALLBACK_USED, fallback="static")
            return RunChange(RunState.SUCCEEDED, result=fb.result, fallback="static", error=error)
        try:
            with fallback_span(run.run_id, wf.name, fb.workflow):
                result = await call_other(run, registry.get(fb.workflow))
        except Exception as fb_exc:  # this fallback failed too: try the next one
            own = RunError(categorize(fb_exc), describe(fb_exc))
            await record(run.run_id, HistoryType.FALLBACK_FAILED, fallback=fb.workflow, error=own)
            error = RunError(own.category, f"{error.message}; fallback {fb.workflow}: {own.message}")
            continue
        await record(run.run_id, HistoryType.FALLBACK_USED, fallback=fb.workflow)
        return RunChange(RunState.SUCCEEDED, result=result, fallback=fb.workflow, error=error)
    return RunChange(RunState.FAILED, error=error)


def checked_result(change: RunChange, max_result_bytes: int) -> RunChange:
    """``change``, or the failure it becomes when its result is not JSON or is too large."""
    if change.state is not RunState.SUCCEEDED:
        return change
    try:
        size = len(change.result_json.encode())
    except (TypeError, ValueError) as exc:  # not JSON: the handler's fault
        return RunChange(RunState.FAILED, error=RunError(ErrorCategory.HANDLER, f"result is not JSON: {exc}"))
    if size > max_result_bytes:
        problem = f"result of {size} bytes exceeds the limit of {max_result_bytes}"
        return RunChange(RunState.FAILED, error=RunError(ErrorCategory.RESOURCE, problem))
    return change
