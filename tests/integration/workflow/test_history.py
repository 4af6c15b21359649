"""Run history (GetRunHistory) and RetryRun over a real workflow server and security service."""

from __future__ import annotations

import pytest

from services.common import FailedPrecondition, NotFound
from services.workflow._app import WorkflowApp
from services.workflow.client import pb
from tests.integration.workflow import plugins
from tests.integration.workflow.conftest import SecurityEnv, client


def kinds(reply: pb.GetRunHistoryResponse) -> list[str]:
    return [pb.HistoryEventType.Name(e.type).removeprefix("HISTORY_EVENT_TYPE_") for e in reply.events]


async def test_history_shows_retries_and_the_fallback(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        run, _ = await c.start_run("with_fallback", {}, wait=True)
        assert run.state == pb.RUN_STATE_SUCCEEDED and run.fallback == "static"
        reply = await c.get_run_history(run.run_id)
    assert kinds(reply) == [
        "RUN_CREATED",
        "ATTEMPT_STARTED",
        "ATTEMPT_FAILED",
        "RETRY_SCHEDULED",
        "ATTEMPT_STARTED",
        "ATTEMPT_FAILED",
        "FALLBACK_USED",
        "RUN_FINISHED",
    ]
    events = list(reply.events)
    assert [e.event_id for e in events] == list(range(1, 9))
    assert "always down" in events[2].error.message and events[2].attempt == 1
    assert events[3].attempt == 2 and events[3].HasField("retry_delay")
    assert events[6].fallback == "static"
    assert events[7].state == pb.RUN_STATE_SUCCEEDED and events[7].HasField("duration")
    times = [e.time.ToNanoseconds() for e in events]
    assert times == sorted(times)


async def test_history_shows_the_open_breaker(app: WorkflowApp, security: SecurityEnv) -> None:
    plugins.DEPENDENCY_UP[0] = False
    async with client(app, security.alice) as c:
        for _ in range(3):  # min_calls 3 at failure rate 0.5: the breaker opens
            assert (await c.start_run("dependent", {}, wait=True))[0].state == pb.RUN_STATE_FAILED
        rejected, _ = await c.start_run("dependent", {}, wait=True)
        reply = await c.get_run_history(rejected.run_id)
    assert "BREAKER_OPEN" in kinds(reply) and "ATTEMPT_FAILED" not in kinds(reply)


async def test_only_the_owner_and_admin_see_or_retry_a_run(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.admin) as admin, client(app, security.alice) as alice:
        theirs, _ = await admin.start_run("echo", {"m": 1}, wait=True)
        for call in (alice.get_run_history, alice.retry_run, alice.get_run):
            with pytest.raises(NotFound, match="not found"):
                await call(theirs.run_id)
        mine, _ = await alice.start_run("with_fallback", {"x": 1}, wait=True)
        assert len((await admin.get_run_history(mine.run_id)).events) > 2
        again, created = await alice.retry_run(mine.run_id, wait=True)
        assert created and again.retry_of == mine.run_id and not again.resumed
        assert dict(again.params) == {"x": 1} and again.principal == "alice"
        by_admin, _ = await admin.retry_run(mine.run_id, resume=True)
        assert by_admin.resumed and by_admin.principal == "root"  # the retrier owns the new run
        pending, _ = await alice.start_run("sleeper", {})
        with pytest.raises(FailedPrecondition, match="still"):
            await alice.retry_run(pending.run_id)
        await alice.cancel_run(pending.run_id)
