from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from services.workflow._context import RunContext
from services.workflow._events import EventType
from services.workflow._model import ErrorCategory
from services.workflow._policies import BreakerState
from services.workflow._policy_config import (
    BreakerSettings,
    FallbackSettings,
    RetrySettings,
    WorkflowPolicy,
)
from services.workflow._states import RunState
from tests.conftest import eventually
from tests.unit.workflow._harness import Harness

FAST_RETRY = RetrySettings(max_attempts=3, initial_backoff_s=0.001, max_backoff_s=0.01)


def failing(counter: list[int], exc: Callable[[], BaseException] = lambda: RuntimeError("down")) -> Any:
    async def handler(ctx: RunContext) -> Any:
        counter.append(ctx.attempt)
        raise exc()

    return handler


async def test_echo_succeeds_with_its_params(h: Harness) -> None:
    run = await h.finish("echo", {"hello": "world"})
    assert (run.state, run.result, run.attempts) == (RunState.SUCCEEDED, {"hello": "world"}, 1)
    assert run.started_at is not None and run.finished_at is not None and run.lease_owner is None
    assert h.executor.stats["echo"].succeeded == 1


async def test_flaky_is_retried_with_durable_attempts(h: Harness) -> None:
    run = await h.start("flaky", {"failures": 2})
    q = h.executor.events.subscribe(run.run_id)
    done = await h.executor.wait_terminal(run.run_id, within_s=10)
    assert (done.state, done.result, done.attempts) == (RunState.SUCCEEDED, {"attempts": 3}, 3)
    events = []
    while not q.empty():
        events.append(q.get_nowait())
    failed = [e for e in events if e.type is EventType.ATTEMPT_FAILED]
    assert (
        len(failed) == 2 and failed[0].error is not None and failed[0].error.category is ErrorCategory.HANDLER
    )


async def test_retries_exhausted_fail_with_handler_category(h: Harness) -> None:
    run = await h.finish("flaky", {"failures": 50})
    assert run.state is RunState.FAILED and run.attempts == 5
    assert run.error is not None and run.error.category is ErrorCategory.HANDLER
    assert "injected failure 5" in run.error.message
    assert h.executor.stats["flaky"].errors_by_category["handler"] == 1


async def test_retries_respect_the_run_deadline(h: Harness) -> None:
    calls: list[int] = []
    slow_retry = RetrySettings(max_attempts=100, initial_backoff_s=0.2, max_backoff_s=0.2, multiplier=1)
    h.registry.register("down", failing(calls), WorkflowPolicy(retry=slow_retry))
    start = time.time()
    run = await h.finish("down", deadline=start + 0.5)
    assert time.time() - start < 2.0
    assert run.state in (RunState.FAILED, RunState.TIMED_OUT)
    assert 1 <= len(calls) < 100


async def test_attempt_timeout_times_out_the_run(h: Harness) -> None:
    async def hang(ctx: RunContext) -> Any:
        await asyncio.sleep(30)

    h.registry.register("hang", hang, WorkflowPolicy(timeout_s=0.05, retry=RetrySettings(max_attempts=2)))
    run = await h.finish("hang")
    assert run.state is RunState.TIMED_OUT and run.attempts == 2
    assert run.error is not None and run.error.category is ErrorCategory.TIMEOUT


async def test_static_fallback_is_recorded(h: Harness) -> None:
    calls: list[int] = []
    policy = WorkflowPolicy(
        retry=FAST_RETRY,
        fallback=[FallbackSettings(workflow="nonexistent"), FallbackSettings(result={"cached": True})],
    )
    h.registry.register("down", failing(calls), policy)
    run = await h.finish("down")
    assert (run.state, run.result, run.fallback) == (RunState.SUCCEEDED, {"cached": True}, "static")
    assert run.error is not None and "down" in run.error.message and "nonexistent" in run.error.message


async def test_workflow_fallback_gets_the_params(h: Harness) -> None:
    h.registry.register(
        "down", failing([]), WorkflowPolicy(retry=FAST_RETRY, fallback=[FallbackSettings(workflow="echo")])
    )
    run = await h.finish("down", {"q": 1})
    assert (run.state, run.result, run.fallback) == (RunState.SUCCEEDED, {"q": 1}, "echo")


async def test_cancel_reaches_a_sleeping_handler(h: Harness) -> None:
    seen: list[str] = []

    async def sleeper(ctx: RunContext) -> Any:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    h.registry.register("sleeper", sleeper)
    run = await h.start("sleeper")
    await eventually(lambda: bool(h.executor._active) and _is_running(h, run.run_id))
    done = await h.executor.cancel(run.run_id, "user asked")
    assert seen == ["cancelled"]
    assert done.state is RunState.CANCELLED
    assert done.error is not None and (done.error.category, done.error.message) == (
        ErrorCategory.CANCELLED,
        "user asked",
    )


def _is_running(h: Harness, run_id: str) -> Any:
    async def check() -> bool:
        return (await h.store.get_run(run_id)).state is RunState.RUNNING

    return check()


async def test_cancel_builtin_sleep_and_pending_scheduled_run(h: Harness) -> None:
    run = await h.start("sleep", {"seconds": 60})
    await eventually(lambda: _is_running(h, run.run_id))
    assert (await h.executor.cancel(run.run_id, "")).state is RunState.CANCELLED
    later = await h.start("echo", {}, not_before=time.time() + 60)
    assert (await h.executor.cancel(later.run_id, "nope")).state is RunState.CANCELLED


async def test_cancel_terminal_run_is_failed_precondition(h: Harness) -> None:
    from services.common import FailedPrecondition

    run = await h.finish("echo", {})
    with pytest.raises(FailedPrecondition):
        await h.executor.cancel(run.run_id, "late")


async def test_not_before_delays_start(h: Harness) -> None:
    run = await h.start("echo", {"a": 1}, not_before=time.time() + 0.2)
    assert (await h.store.get_run(run.run_id)).state is RunState.PENDING
    done = await h.executor.wait_terminal(run.run_id, within_s=5)
    assert done.state is RunState.SUCCEEDED and done.started_at is not None
    assert done.started_at >= run.not_before  # type: ignore[operator]


async def test_breaker_opens_sheds_half_opens_and_closes(h: Harness) -> None:
    healthy = {"value": False}
    calls: list[int] = []

    async def dep(ctx: RunContext) -> Any:
        calls.append(1)
        if not healthy["value"]:
            raise ConnectionError("dependency down")
        return "ok"

    breaker = BreakerSettings(window_s=60, min_calls=3, failure_rate=0.5, open_s=10, half_open_probes=1)
    h.registry.register("dep", dep, WorkflowPolicy(retry=RetrySettings(max_attempts=1), breaker=breaker))
    for _ in range(3):
        assert (await h.finish("dep")).state is RunState.FAILED
    wf = h.registry.get("dep")
    assert h.executor.breaker(wf).state is BreakerState.OPEN
    shed = await h.finish("dep")
    assert len(calls) == 3  # shed without calling the handler
    assert (
        shed.error is not None
        and shed.error.category is ErrorCategory.DEPENDENCY
        and "open" in shed.error.message
    )
    h.mono.advance(10)
    healthy["value"] = True
    assert (await h.finish("dep")).state is RunState.SUCCEEDED  # the half-open probe
    assert h.executor.breaker(wf).state is BreakerState.CLOSED


async def test_validation_errors_do_not_trip_the_breaker(h: Harness) -> None:
    from services.common import InvalidArgument

    h.registry.register(
        "picky",
        failing([], lambda: InvalidArgument("bad input")),
        WorkflowPolicy(breaker=BreakerSettings(min_calls=2, failure_rate=0.5)),
    )
    for _ in range(4):
        run = await h.finish("picky")
        assert run.error is not None and run.error.category is ErrorCategory.VALIDATION
        assert run.attempts == 1  # never retried
    assert h.executor.breaker(h.registry.get("picky")).state is BreakerState.CLOSED


async def test_resume_after_crash_skips_finished_steps(h: Harness) -> None:
    executed: list[str] = []
    gate = asyncio.Event()

    async def multi(ctx: RunContext) -> Any:
        a = await ctx.step("a", lambda: executed.append("a") or 1)
        b = await ctx.step("b", lambda: executed.append("b") or a + 1)

        async def c() -> int:
            executed.append("c")
            await gate.wait()
            return b + 1

        return {"c": await ctx.step("c", c)}

    h.registry.register("multi", multi)
    run = await h.start("multi")
    await eventually(lambda: executed == ["a", "b", "c"])
    await h.executor.stop()  # the process "dies" mid-step c: the run stays RUNNING
    assert (await h.store.get_run(run.run_id)).state is RunState.RUNNING
    gate.set()
    h.executor = h.new_executor()
    await h.executor.start()  # same owner id: resumes at once
    done = await h.executor.wait_terminal(run.run_id, within_s=5)
    assert (done.state, done.result, done.attempts) == (RunState.SUCCEEDED, {"c": 3}, 2)
    assert executed == ["a", "b", "c", "c"]
    steps = {s.name: s.executions for s in await h.store.get_steps(run.run_id)}
    assert steps == {"a": 1, "b": 1, "c": 2}


async def test_unregistered_workflow_on_resume_fails_with_validation(h: Harness) -> None:
    run = await h.finish("gone")
    assert run.state is RunState.FAILED
    assert run.error is not None and run.error.category is ErrorCategory.VALIDATION


async def test_process_isolated_handler_runs_through_the_executor(h: Harness) -> None:
    # Limits are covered in test_isolation.py and end to end in test_examples.py.
    policy = WorkflowPolicy(isolation="process", cpu_time_s=5, retry=RetrySettings(max_attempts=1))
    h.registry.register_ref("add", "tests.unit.workflow.process_handlers:add", policy)
    h.registry.register_ref("boom", "tests.unit.workflow.process_handlers:boom", policy)
    ok = await h.finish("add", {"a": 1, "b": 2})
    assert ok.state is RunState.SUCCEEDED and ok.result["sum"] == 3
    failed = await h.finish("boom")
    assert failed.state is RunState.FAILED
    assert (
        failed.error is not None
        and failed.error.category is ErrorCategory.HANDLER
        and "KeyError" in failed.error.message
    )


async def test_step_results_must_be_json(h: Harness) -> None:
    async def bad(ctx: RunContext) -> Any:
        return await ctx.step("s", lambda: object())

    h.registry.register("bad", bad, WorkflowPolicy(retry=RetrySettings(max_attempts=1)))
    run = await h.finish("bad")
    assert run.state is RunState.FAILED and run.error is not None and "serializable" in run.error.message


async def test_oversized_or_non_json_results_fail_the_run(h: Harness) -> None:
    async def huge(ctx: RunContext) -> Any:
        return "x" * (2 << 20)

    async def odd(ctx: RunContext) -> Any:
        return {1, 2}

    one_try = WorkflowPolicy(retry=RetrySettings(max_attempts=1))
    h.registry.register("huge", huge, one_try)
    h.registry.register("odd", odd, one_try)
    big = await h.finish("huge")
    assert big.state is RunState.FAILED and big.error is not None
    assert big.error.category is ErrorCategory.RESOURCE and "exceeds" in big.error.message

    async def fat_step(ctx: RunContext) -> Any:
        return await ctx.step("s", lambda: "z" * (2 << 20))

    h.registry.register("fat_step", fat_step, one_try)
    fat = await h.finish("fat_step")
    assert fat.state is RunState.FAILED and fat.error is not None
    assert fat.error.category is ErrorCategory.RESOURCE and "step 's'" in fat.error.message
    weird = await h.finish("odd")
    assert weird.state is RunState.FAILED and weird.error is not None and "not JSON" in weird.error.message
