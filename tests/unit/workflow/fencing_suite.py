"""Backend-independent lease fencing tests: every write of a run's executor carries its lease.

A backend's test module subclasses `FencingSuite` beside `RunStoreSuite` (store_suite.py),
with the same ``store`` fixture (an opened, empty store whose clock returns 1000.0).
"""

from __future__ import annotations

import pytest

from services.workflow._history import HistoryEvent, HistoryType
from services.workflow._model import ErrorCategory, Lease, LeaseLost, RunChange, RunError, canonical_json
from services.workflow._states import RunState
from services.workflow._store import RunStore
from tests.unit.workflow.store_suite import new_run


class FencingSuite:
    """Every write of a run's executor carries its lease and is refused once the lease moved.

    The clock of the ``store`` fixture returns 1000.0: leases expiring later are live."""

    async def _taken_over(self, store: RunStore) -> tuple[str, Lease, Lease]:
        """A run created leased to r1 (epoch 1), then taken over by r2 after r1's lease expired."""
        run, _ = await store.create_run(new_run(lease_owner="r1", lease_expires=1100.0))
        assert run.lease == Lease("r1", 1)
        (taken,) = await store.claim_runs("r2", now=1200.0, lease_s=3600.0, limit=10)
        assert taken.lease == Lease("r2", 2)
        return run.run_id, Lease("r1", 1), Lease("r2", 2)

    async def test_every_claim_moves_the_epoch_even_for_the_same_owner(self, store: RunStore) -> None:
        run, _ = await store.create_run(new_run(lease_owner="r1", lease_expires=1100.0))
        (again,) = await store.claim_runs("r1", now=1000.0, lease_s=30.0, limit=10)  # a restart of r1
        assert again.lease == Lease("r1", 2)
        assert await store.claim_runs("r1", now=1000.0, lease_s=30.0, limit=10, skip=[run.run_id]) == []
        with pytest.raises(LeaseLost):  # the previous incarnation's lease is stale
            await store.begin_step(run.run_id, "s", Lease("r1", 1))

    async def test_a_stale_lease_cannot_change_the_run(self, store: RunStore) -> None:
        run_id, stale, current = await self._taken_over(store)
        with pytest.raises(LeaseLost):
            await store.update_run(run_id, RunChange(RunState.RUNNING, attempt=True), stale)
        with pytest.raises(LeaseLost):
            await store.update_run(run_id, RunChange(RunState.SUCCEEDED, result=1), stale)
        unchanged = await store.get_run(run_id)
        assert (unchanged.state, unchanged.attempts, unchanged.lease) == (RunState.PENDING, 0, current)
        running = await store.update_run(run_id, RunChange(RunState.RUNNING, attempt=True), current)
        assert running.attempts == 1

    async def test_a_stale_lease_cannot_begin_or_record_a_step(self, store: RunStore) -> None:
        run_id, stale, current = await self._taken_over(store)
        with pytest.raises(LeaseLost):
            await store.begin_step(run_id, "s", stale)
        assert await store.get_steps(run_id) == []  # nothing counted for a refused start
        assert await store.begin_step(run_id, "s", current) == 1
        with pytest.raises(LeaseLost):
            await store.record_step(run_id, "s", canonical_json("stale"), stale)
        await store.record_step(run_id, "s", canonical_json("fresh"), current)
        await store.record_step(run_id, "s", canonical_json("again"), current)  # first write wins, no error
        (step,) = await store.get_steps(run_id)
        assert (step.completed, step.result, step.executions) == (True, "fresh", 1)

    async def test_a_stale_lease_cannot_fail_a_step_or_append_history(self, store: RunStore) -> None:
        run_id, stale, current = await self._taken_over(store)
        assert await store.begin_step(run_id, "s", current) == 1
        before = await store.get_history(run_id)
        with pytest.raises(LeaseLost):
            await store.fail_step(run_id, "s", RunError(ErrorCategory.HANDLER, "stale"), stale)
        with pytest.raises(LeaseLost):
            await store.append_event(
                run_id, HistoryEvent(HistoryType.ATTEMPT_FAILED, at=1.0, attempt=1), stale
            )
        (step,) = await store.get_steps(run_id)
        assert step.error is None and await store.get_history(run_id) == before
        await store.fail_step(run_id, "s", RunError(ErrorCategory.HANDLER, "fresh"), current)
        await store.append_event(
            run_id, HistoryEvent(HistoryType.RETRY_SCHEDULED, at=1.0, attempt=2), current
        )
        (step,) = await store.get_steps(run_id)
        assert step.error == RunError(ErrorCategory.HANDLER, "fresh")
        assert [e.type for e in await store.get_history(run_id)][-2:] == [
            HistoryType.STEP_FAILED,
            HistoryType.RETRY_SCHEDULED,
        ]
        # A finished step is kept as it is: no refusal for the current lease, nothing written.
        await store.record_step(run_id, "s", canonical_json("done"), current)
        await store.fail_step(run_id, "s", RunError(ErrorCategory.HANDLER, "late"), current)
        (step,) = await store.get_steps(run_id)
        assert (step.completed, step.error) == (True, None)

    async def test_no_step_starts_on_an_expired_lease(self, store: RunStore) -> None:
        run, _ = await store.create_run(new_run(lease_owner="r1", lease_expires=999.0))  # clock: 1000
        with pytest.raises(LeaseLost):
            await store.begin_step(run.run_id, "s", Lease("r1", 1))
        # Nobody took it over: renewing the expired lease is allowed, and then the step may start.
        assert await store.renew_leases("r1", {run.run_id: 1}, until=1100.0) == {run.run_id}
        assert await store.begin_step(run.run_id, "s", Lease("r1", 1)) == 1

    async def test_renewal_needs_the_current_epoch(self, store: RunStore) -> None:
        run, _ = await store.create_run(new_run(lease_owner="r1", lease_expires=1100.0))
        await store.claim_runs("r1", now=1000.0, lease_s=30.0, limit=10)  # epoch 2, same owner
        assert await store.renew_leases("r1", {run.run_id: 1}, until=5000.0) == set()
        assert await store.renew_leases("r1", {run.run_id: 2}, until=5000.0) == {run.run_id}

    async def test_a_terminal_run_refuses_fenced_writes(self, store: RunStore) -> None:
        run, _ = await store.create_run(new_run(lease_owner="r1", lease_expires=1100.0))
        await store.update_run(run.run_id, RunChange(RunState.CANCELLED))  # CancelRun: unfenced
        with pytest.raises(LeaseLost):
            await store.begin_step(run.run_id, "s", Lease("r1", 1))
        with pytest.raises(LeaseLost):
            await store.update_run(run.run_id, RunChange(RunState.SUCCEEDED, result=1), Lease("r1", 1))
