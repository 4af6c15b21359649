"""Backend-independent contract of a run's history and step records (both stores run it).

Same fixture contract as `store_suite`: an opened, empty store whose clock returns 1000.0.
"""

from __future__ import annotations

from services.workflow._history import HistoryEvent, HistoryType
from services.workflow._model import ErrorCategory, RunChange, RunError, canonical_json
from services.workflow._states import RunState
from services.workflow._store import RunStore
from tests.unit.workflow.store_suite import new_run


def kinds(events: list[HistoryEvent]) -> list[str]:
    return [e.type.value for e in events]


class RunHistorySuite:
    async def test_history_records_every_write_in_order(self, store: RunStore) -> None:
        new = new_run(created_at=990.0, trace_id="ab" * 16)
        run, _ = await store.create_run(new)
        assert run.trace_id == "ab" * 16
        await store.update_run(run.run_id, RunChange(RunState.RUNNING, attempt=True))
        assert await store.begin_step(run.run_id, "fetch") == 1
        await store.fail_step(run.run_id, "fetch", RunError(ErrorCategory.HANDLER, "boom"))
        failed = RunError(ErrorCategory.HANDLER, "boom")
        await store.append_event(
            run.run_id, HistoryEvent(HistoryType.ATTEMPT_FAILED, at=1000.0, attempt=1, error=failed)
        )
        await store.append_event(
            run.run_id, HistoryEvent(HistoryType.RETRY_SCHEDULED, at=1000.0, attempt=2, retry_delay_s=0.25)
        )
        await store.update_run(run.run_id, RunChange(RunState.RUNNING, attempt=True))
        assert await store.begin_step(run.run_id, "fetch") == 2
        await store.record_step(run.run_id, "fetch", canonical_json({"ok": True}))
        # First write wins, no event:
        await store.record_step(run.run_id, "fetch", canonical_json({"ok": "again"}))
        await store.update_run(run.run_id, RunChange(RunState.SUCCEEDED, result=1))
        events = await store.get_history(run.run_id)
        assert kinds(events) == [
            "RUN_CREATED",
            "ATTEMPT_STARTED",
            "STEP_STARTED",
            "STEP_FAILED",
            "ATTEMPT_FAILED",
            "RETRY_SCHEDULED",
            "ATTEMPT_STARTED",
            "STEP_STARTED",
            "STEP_FINISHED",
            "RUN_FINISHED",
        ]
        assert [e.event_id for e in events] == list(range(1, 11))
        assert events[3].error == failed and events[3].step == "fetch"
        assert (events[5].attempt, events[5].retry_delay_s) == (2, 0.25)
        assert (events[6].attempt, events[8].attempt, events[8].duration_s) == (2, 2, 0.0)
        end = events[-1]
        assert (end.state, end.error, end.duration_s) == (RunState.SUCCEEDED, None, 10.0)

    async def test_steps_carry_timing_and_their_last_error(self, store: RunStore) -> None:
        run, _ = await store.create_run(new_run())
        await store.begin_step(run.run_id, "a")
        await store.fail_step(run.run_id, "a", RunError(ErrorCategory.TIMEOUT, "slow"))
        await store.begin_step(run.run_id, "b")
        await store.record_step(run.run_id, "b", canonical_json([1]))
        a, b = await store.get_steps(run.run_id)
        assert (a.completed, a.error, a.started_at, a.duration_s) == (
            False,
            RunError(ErrorCategory.TIMEOUT, "slow"),
            1000.0,
            0.0,
        )
        assert (b.completed, b.error, b.executions, b.duration_s) == (True, None, 1, 0.0)
        # A later execution finishes: error cleared.
        await store.record_step(run.run_id, "a", canonical_json("late"))
        a, _ = await store.get_steps(run.run_id)
        assert (a.completed, a.error, a.result) == (True, None, "late")

    async def test_a_resumed_retry_starts_with_the_finished_steps(self, store: RunStore) -> None:
        old, _ = await store.create_run(new_run())
        await store.begin_step(old.run_id, "done")
        await store.record_step(old.run_id, "done", canonical_json({"v": 1}))
        await store.begin_step(old.run_id, "broken")
        retry, _ = await store.create_run(new_run(retry_of=old.run_id, resume=True))
        assert (retry.retry_of, retry.resumed) == (old.run_id, True)
        steps = await store.get_steps(retry.run_id)
        assert [(s.name, s.completed, s.result) for s in steps] == [("done", True, {"v": 1})]
        fresh, _ = await store.create_run(new_run(retry_of=old.run_id))
        assert (fresh.resumed, await store.get_steps(fresh.run_id)) == (False, [])

    async def test_unknown_run_has_no_history(self, store: RunStore) -> None:
        assert await store.get_history("nope") == []

    async def test_a_run_created_started_has_its_first_attempt_counted(self, store: RunStore) -> None:
        new = new_run(created_at=990.0, lease_owner="r1", lease_expires=1100.0, started=True)
        run, created = await store.create_run(new)
        assert created and (run.state, run.attempts, run.started_at) == (RunState.RUNNING, 1, 990.0)
        assert await store.get_run(run.run_id) == run
        events = await store.get_history(run.run_id)
        assert [(e.type, e.attempt, e.event_id) for e in events] == [
            (HistoryType.RUN_CREATED, 0, 1),
            (HistoryType.ATTEMPT_STARTED, 1, 2),
        ]
        # Taken over after a crash: the next attempt is the second.
        (taken,) = await store.claim_runs("r2", now=1200.0, lease_s=60.0, limit=10)
        again = await store.update_run(run.run_id, RunChange(RunState.RUNNING, attempt=True), taken.lease)
        assert again.attempts == 2 and again.started_at == 990.0

    async def test_an_update_of_a_known_run_answers_what_a_read_returns(self, store: RunStore) -> None:
        run, _ = await store.create_run(new_run(lease_owner="r1", lease_expires=1100.0, labels={"k": "v"}))
        lease = run.lease
        running = await store.update_run(run.run_id, RunChange(RunState.RUNNING, attempt=True), lease, run)
        assert running == await store.get_run(run.run_id)
        assert (running.attempts, running.started_at) == (1, 1000.0)
        change = RunChange(
            RunState.SUCCEEDED,
            result={"r": [1]},
            fallback="static",
            error=RunError(ErrorCategory.HANDLER, "x"),
        )
        done = await store.update_run(run.run_id, change, lease, running)
        assert done == await store.get_run(run.run_id)
        assert (done.lease, done.finished_at, done.result) == (None, 1000.0, {"r": [1]})
        assert kinds(await store.get_history(run.run_id))[-1] == "RUN_FINISHED"
