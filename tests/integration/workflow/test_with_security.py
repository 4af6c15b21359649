"""The workflow service screened by the real security service, both on port 0."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

from services.common import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from services.workflow._app import WorkflowApp
from services.workflow._degradation import Level
from services.workflow.client import WorkflowClient, pb
from tests.integration.workflow import plugins
from tests.integration.workflow.conftest import SecurityEnv
from tests.unit.workflow._fakes import eventually


def client(app: WorkflowApp, token: str | None) -> WorkflowClient:
    return WorkflowClient(app.server.address, token=token, timeout_s=10)


async def test_happy_path_echo_waits_until_succeeded(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        run, created = await c.start_run("echo", {"greeting": "hi", "n": 3}, wait=True, labels={"team": "a"})
        assert created and run.state == pb.RUN_STATE_SUCCEEDED
        assert dict(run.result.struct_value) == {"greeting": "hi", "n": 3.0}
        assert run.principal == "alice" and run.audit_id and run.attempts == 1
        got = await c.get_run(run.run_id)
        assert got.state == pb.RUN_STATE_SUCCEEDED and got.labels["team"] == "a"


async def test_handler_receives_sanitized_params(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        run, _ = await c.start_run("counting", {"note": "mail me at jane.doe@example.com"}, wait=True)
    assert run.state == pb.RUN_STATE_SUCCEEDED
    assert "jane.doe@example.com" not in run.result.struct_value["note"]
    assert run.result.struct_value == run.params  # what the handler got is what was stored
    assert [run.run_id] == plugins.CALLS


@pytest.mark.parametrize("token", [None, "vgl_000000000000_not-a-real-secret", "garbage"])
async def test_unauthenticated_never_runs(app: WorkflowApp, token: str | None) -> None:
    async with client(app, token) as c:
        with pytest.raises(Unauthenticated):
            await c.start_run("counting", {}, wait=True)
        assert (await c.list_runs())[0] == []
    assert plugins.CALLS == []
    assert app.executor.stats["counting"].errors_by_category["auth"] >= 1


async def test_insufficient_level_is_permission_denied(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        with pytest.raises(PermissionDenied, match="PRIVILEGED"):
            await c.start_run("privileged", {}, wait=True)
    async with client(app, security.admin) as c:
        run, _ = await c.start_run("privileged", {}, wait=True)
        assert run.state == pb.RUN_STATE_SUCCEEDED
    assert len(plugins.CALLS) == 1


async def test_schema_violation_passes_bad_request_details_through(
    app: WorkflowApp, security: SecurityEnv
) -> None:
    async with client(app, security.alice) as c:
        with pytest.raises(InvalidArgument) as info:
            await c.start_run("sleep", {"seconds": "soon"})
    assert info.value.violations, "BadRequest field violations must survive the hop"
    assert any("seconds" in v.field for v in info.value.violations)


async def test_path_traversal_is_refused(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        with pytest.raises(InvalidArgument) as info:
            await c.start_run("artifact.verify", {"path": "../../etc/passwd", "sha256": "0" * 64})
    assert any("path" in v.field for v in info.value.violations)


async def test_artifact_verify_calls_the_security_service(app: WorkflowApp, security: SecurityEnv) -> None:
    data = b"model weights"
    (security.root_dir / "model.bin").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    async with client(app, security.alice) as c:
        ok, _ = await c.start_run("artifact.verify", {"path": "model.bin", "sha256": digest}, wait=True)
        assert ok.state == pb.RUN_STATE_SUCCEEDED, ok.error.message
        assert ok.result.struct_value["actual_sha256"] == digest
        bad, _ = await c.start_run("artifact.verify", {"path": "model.bin", "sha256": "0" * 64}, wait=True)
        assert bad.state == pb.RUN_STATE_FAILED and "mismatch" in bad.error.message
        assert bad.attempts == 1  # a mismatch is a decision, never retried


async def test_idempotency(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        first, created = await c.start_run("echo", {"a": 1}, idempotency_key="order-1", wait=True)
        again, created_again = await c.start_run("echo", {"a": 1}, idempotency_key="order-1", wait=True)
        assert created and not created_again and again.run_id == first.run_id
        with pytest.raises(AlreadyExists, match="order-1"):
            await c.start_run("echo", {"a": 2}, idempotency_key="order-1")


async def test_fallback_is_recorded(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        run, _ = await c.start_run("with_fallback", {}, wait=True)
    assert run.state == pb.RUN_STATE_SUCCEEDED and run.fallback_applied and run.fallback == "static"
    assert dict(run.result.struct_value) == {"from": "cache"}
    assert run.attempts == 2 and "always down" in run.error.message


async def test_retries_respect_the_callers_deadline(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        start = time.monotonic()
        run, _ = await c.start_run("slow_retry", {}, wait=True, timeout_s=1.0)
        elapsed = time.monotonic() - start
        assert elapsed < 1.5
        final = await eventually(lambda: _terminal(c, run.run_id), timeout=5)
    assert final.state in (pb.RUN_STATE_FAILED, pb.RUN_STATE_TIMED_OUT)
    # Full-jitter backoffs of at most 0.2 s fit ~10 attempts in the 1 s deadline, never 100,
    # and the run ended at the caller's deadline rather than after its retry budget.
    assert 2 <= final.attempts < 100
    took = final.finished_at.ToNanoseconds() - final.created_at.ToNanoseconds()
    assert took < 1.3e9


async def _terminal(c: WorkflowClient, run_id: str) -> pb.Run | None:
    run = await c.get_run(run_id)
    return run if run.state in (pb.RUN_STATE_FAILED, pb.RUN_STATE_TIMED_OUT, pb.RUN_STATE_SUCCEEDED) else None


async def test_cancellation_reaches_a_sleeping_handler(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        run, _ = await c.start_run("sleeper", {})
        await eventually(lambda: _state_is(c, run.run_id, pb.RUN_STATE_RUNNING))
        cancelled = await c.cancel_run(run.run_id, "operator said stop")
        assert cancelled.state == pb.RUN_STATE_CANCELLED
        assert cancelled.error.category == pb.ERROR_CATEGORY_CANCELLED
        assert cancelled.error.message == "operator said stop"
        with pytest.raises(FailedPrecondition):
            await c.cancel_run(run.run_id)
    assert [run.run_id] == plugins.CANCELLED


async def _state_is(c: WorkflowClient, run_id: str, state: int) -> bool:
    return (await c.get_run(run_id)).state == state


async def test_watch_streams_until_terminal(app: WorkflowApp, security: SecurityEnv) -> None:
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
        await eventually(lambda: app.executor.bulkhead(app.registry.get("narrow")).reserved == 0)
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


async def test_pagination_is_stable_with_opaque_tokens(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        ids = [(await c.start_run("echo", {"i": i}))[0].run_id for i in range(5)]
        page, token = await c.list_runs(workflow="echo", page_size=2)
        seen = [r.run_id for r in page]
        await c.start_run("echo", {"i": 99})  # newer runs never shift later pages
        while token:
            page, token = await c.list_runs(workflow="echo", page_size=2, page_token=token)
            seen += [r.run_id for r in page]
        assert seen == ids[::-1]
        _, token = await c.list_runs(workflow="echo", page_size=2)
        with pytest.raises(InvalidArgument, match="different filters"):
            await c.list_runs(workflow="sleep", page_size=2, page_token=token)


async def test_scheduled_run_waits_for_not_before(app: WorkflowApp, security: SecurityEnv) -> None:
    import datetime as dt

    async with client(app, security.alice) as c:
        when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.5)
        run, _ = await c.start_run("echo", {"later": True}, not_before=when)
        assert run.state == pb.RUN_STATE_PENDING
        done = await eventually(lambda: _terminal(c, run.run_id), timeout=5)
    assert done.state == pb.RUN_STATE_SUCCEEDED
    assert done.started_at.ToDatetime(dt.UTC) >= when.replace(microsecond=when.microsecond // 1000 * 1000)


async def test_concurrent_starts_all_commit(app: WorkflowApp, security: SecurityEnv) -> None:
    async with client(app, security.alice) as c:
        results = await asyncio.gather(*(c.start_run("echo", {"i": i}, wait=True) for i in range(50)))
    assert all(r.state == pb.RUN_STATE_SUCCEEDED for r, _ in results)
    assert len({r.run_id for r, _ in results}) == 50
