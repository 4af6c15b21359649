"""Resilience, scheduling and degradation, with the real security server on port 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common import (
    FailedPrecondition,
    ResourceExhausted,
)
from services.workflow._admission import Load
from services.workflow._app import WorkflowApp
from services.workflow._degradation import Level
from services.workflow.client import pb
from tests.conftest import eventually
from tests.integration.workflow import plugins
from tests.integration.workflow.conftest import SecurityEnv, StartWorkflow, client, has_state, terminal_run


async def test_fallback_is_recorded(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        run, _ = await c.start_run("with_fallback", {}, wait=True)
    assert run.state == pb.RUN_STATE_SUCCEEDED and run.fallback_applied and run.fallback == "static"
    assert dict(run.result.struct_value) == {"from": "cache"}
    assert run.attempts == 2 and "always down" in run.error.message


async def test_retries_respect_the_callers_deadline(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        # Answered, not DEADLINE_EXCEEDED: StartRun(wait) returned within the caller's 1 s.
        run, _ = await c.start_run("slow_retry", {}, wait=True, timeout_s=1.0)
        final = await eventually(lambda: terminal_run(c, run.run_id), timeout=10)
    assert final.state in (pb.RUN_STATE_FAILED, pb.RUN_STATE_TIMED_OUT)
    # The caller's deadline became the run's (from the server's own clock, no wall-clock
    # measurement here), and the run stopped because of it: it retried until the next full-jitter
    # backoff (at most 0.2 s) would pass the deadline, long before its 100-attempt budget.
    stored = await app.store.get_run(run.run_id)
    # (+0.01: grpc-timeout travels rounded up to its unit)
    assert stored.deadline is not None and stored.deadline <= stored.created_at + 1.01
    assert stored.finished_at is not None and stored.finished_at >= stored.deadline - 0.2, (
        final.error,
        final.attempts,
    )
    assert 1 <= final.attempts < 100  # 1 when screening on a busy machine left < 0.2 s


async def test_cancellation_reaches_a_sleeping_handler(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        run, _ = await c.start_run("sleeper", {})
        await eventually(lambda: has_state(c, run.run_id, pb.RUN_STATE_RUNNING))
        cancelled = await c.cancel_run(run.run_id, "operator said stop")
        assert cancelled.state == pb.RUN_STATE_CANCELLED
        assert cancelled.error.category == pb.ERROR_CATEGORY_CANCELLED
        assert cancelled.error.message == "operator said stop"
        with pytest.raises(FailedPrecondition):
            await c.cancel_run(run.run_id)
    assert [run.run_id] == plugins.CANCELLED


async def test_watch_streams_untilterminal_run(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        run, _ = await c.start_run("flaky", {"failures": 2})
        events = [e async for e in c.watch_run(run.run_id, timeout_s=10)]
    assert events[0].type == pb.RUN_EVENT_TYPE_SNAPSHOT
    assert events[-1].run.state == pb.RUN_STATE_SUCCEEDED
    failed = [e for e in events if e.type == pb.RUN_EVENT_TYPE_ATTEMPT_FAILED]
    assert len(failed) <= 2 and all(e.error.category == pb.ERROR_CATEGORY_HANDLER for e in failed)
    assert events[-1].run.attempts == 3


async def test_breaker_opens_sheds_half_opens_and_closes(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        for _ in range(3):  # dependency down: 3 failures in the window open the breaker
            run, _ = await c.start_run("dependent", {}, wait=True)
            assert run.state == pb.RUN_STATE_FAILED and run.error.category == pb.ERROR_CATEGORY_HANDLER
        info = {w.name: w for w in await c.list_workflows()}["dependent"]
        assert info.breaker_state == pb.BREAKER_STATE_OPEN
        shed, _ = await c.start_run("dependent", {}, wait=True)
        assert shed.state == pb.RUN_STATE_FAILED and shed.error.category == pb.ERROR_CATEGORY_DEPENDENCY
        assert len(plugins.CALLS) == 3  # the open breaker did not call the handler
        plugins.DEPENDENCY_UP[0] = True

        async def probe_succeeds() -> bool:
            run, _ = await c.start_run("dependent", {}, wait=True)
            return run.state == pb.RUN_STATE_SUCCEEDED

        await eventually(probe_succeeds, timeout=5, interval=0.1)  # after open_s: a half-open probe
        info = {w.name: w for w in await c.list_workflows()}["dependent"]
        assert info.breaker_state == pb.BREAKER_STATE_CLOSED


async def test_full_bulkhead_sheds_with_retry_info(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        first, _ = await c.start_run("narrow", {})
        with pytest.raises(ResourceExhausted, match="capacity") as info:
            await c.start_run("narrow", {})
        assert info.value.retry_after_s > 0
        await c.cancel_run(first.run_id)
        await eventually(lambda: app.executor.admission.load(app.registry.get("narrow")) == Load(0, 0))
        second, _ = await c.start_run("narrow", {})  # capacity is back
        await c.cancel_run(second.run_id)


async def test_restricted_keeps_privileged_callers(app: WorkflowApp, security: SecurityEnv) -> None:
    app.gate.published = Level.RESTRICTED
    async with client(app, security.alice) as c:
        with pytest.raises(ResourceExhausted, match="RESTRICTED"):
            await c.start_run("echo", {})
    async with client(app, security.admin) as c:
        run, _ = await c.start_run("echo", {"k": 1}, wait=True)
    assert run.state == pb.RUN_STATE_SUCCEEDED and run.degradation_applied
    assert run.degradation_level == Level.RESTRICTED.to_proto()


async def test_scheduled_run_waits_for_not_before(app: WorkflowApp, security: SecurityEnv) -> None:
    import datetime as dt

    async with client(app, security.alice) as c:
        when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.5)
        run, _ = await c.start_run("echo", {"later": True}, not_before=when)
        assert run.state == pb.RUN_STATE_PENDING
        done = await eventually(lambda: terminal_run(c, run.run_id), timeout=5)
    assert done.state == pb.RUN_STATE_SUCCEEDED
    assert done.started_at.ToDatetime(dt.UTC) >= when.replace(microsecond=when.microsecond // 1000 * 1000)


async def test_cron_slot_runs_once_across_restarts(
    start_workflow: StartWorkflow, security: SecurityEnv, tmp_path: Path
) -> None:
    token_file = tmp_path / "svc-token"
    token_file.write_text(security.admin)
    settings = {
        "service_token_file": str(token_file),
        "store_path": str(tmp_path / "sched.db"),
        # catch_up: the latest slot (this minute's) is started at start-up
        "schedules": [{"name": "minutely", "cron": "* * * * *", "workflow": "counting", "params": {"s": 1}}],
    }

    async def scheduled_runs(app: WorkflowApp) -> list[pb.Run]:
        async with client(app, security.admin) as c:
            runs, _ = await c.list_runs(workflow="counting")
        return [r for r in runs if r.schedule == "minutely"]

    first = await start_workflow(security.address, **settings)
    runs = await eventually(lambda: scheduled_runs(first), timeout=5)
    assert runs[0].idempotency_key.startswith("schedule:minutely:")
    await first.server.stop(0)
    second = await start_workflow(security.address, **settings)  # same store: same slot, same run
    await eventually(lambda: _all_done(second, security), timeout=5)
    again = await scheduled_runs(second)
    slots = [r.idempotency_key for r in again]
    assert len(slots) == len(set(slots)), "a slot ran twice"
    assert again[-1].run_id == runs[-1].run_id


async def _all_done(app: WorkflowApp, security: SecurityEnv) -> bool:
    async with client(app, security.admin) as c:
        runs, _ = await c.list_runs(workflow="counting")
    return bool(runs) and all(r.state == pb.RUN_STATE_SUCCEEDED for r in runs)
