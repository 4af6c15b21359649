"""Backend-independent RunStore contract tests.

A backend's test module subclasses `RunStoreSuite` and provides an async ``store``
fixture yielding an opened, empty store whose clock always returns 1000.0 (see
test_sqlite_store.py); the PostgreSQL backend reuses this class unchanged.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from services.common import AlreadyExists, NotFound
from services.workflow._model import ErrorCategory, NewRun, RunChange, RunError, RunQuery, canonical_json
from services.workflow._states import InvalidTransition, RunState
from services.workflow._store import RunStore

V1_LEASED_RUN = (
    "INSERT INTO runs (run_id, workflow, state, params, principal, priority, request_hash,"
    " created_at, updated_at, lease_owner, lease_expires)"
    " VALUES ('v1-run', 'echo', 'RUNNING', '{}', 'alice', 0, 'h', 1.0, 2.0, 'old-replica', 5.0)"
)
"""A leased RUNNING run as written at schema version 1 (before lease epochs), for both stores."""


def new_run(**kw: object) -> NewRun:
    fields: dict[str, object] = {
        "run_id": uuid.uuid4().hex,
        "workflow": "echo",
        "params": {"x": 1},
        "principal": "alice",
        "priority": 0,
        "created_at": 1000.0,
    }
    fields.update(kw)
    return NewRun(**fields)  # type: ignore[arg-type]


class RunStoreSuite:
    async def test_is_a_run_store(self, store: RunStore) -> None:
        assert isinstance(store, RunStore)

    async def test_create_then_get_round_trips_every_field(self, store: RunStore) -> None:
        new = new_run(
            params={"nested": {"a": [1, 2, "ü"]}}, idempotency_key="k1", not_before=5.0, deadline=9.5
        )
        run, created = await store.create_run(new)
        assert created
        got = await store.get_run(new.run_id)
        assert got == run
        assert (got.state, got.params, got.principal, got.idempotency_key) == (
            RunState.PENDING,
            {"nested": {"a": [1, 2, "ü"]}},
            "alice",
            "k1",
        )
        assert (got.not_before, got.deadline, got.attempts) == (5.0, 9.5, 0)

    @pytest.mark.parametrize(
        "fields",
        [
            {},
            {"started": True, "lease_owner": "r1", "lease_expires": 2000.0, "trace_id": "a" * 32},
            {"labels": {"team": "b", "app": "a"}, "redactions": {"email": 2, "card": 1}},
            {"params": {"z": [1.5, {"y": None}], "a": "ü"}, "degradation": "REDUCED", "audit_id": "x"},
            {"not_before": 1500.0, "schedule": "*/5 * * * *", "priority": 7, "retry_of": None},
        ],
    )
    async def test_the_created_run_is_the_run_read_back(
        self, store: RunStore, fields: dict[str, Any]
    ) -> None:
        # The writer builds the created run from what it inserted instead of decoding the row:
        # it must equal, field by field, what any later read returns.
        new = new_run(**fields)
        run, created = await store.create_run(new)
        assert created and run == await store.get_run(new.run_id)

    async def test_unknown_run_is_not_found(self, store: RunStore) -> None:
        with pytest.raises(NotFound):
            await store.get_run("nope")

    async def test_idempotent_repeat_returns_same_run(self, store: RunStore) -> None:
        first, _ = await store.create_run(new_run(idempotency_key="same"))
        again, created = await store.create_run(new_run(idempotency_key="same"))
        assert not created and again.run_id == first.run_id

    async def test_same_key_different_request_is_already_exists(self, store: RunStore) -> None:
        await store.create_run(new_run(idempotency_key="k", request_hash="h1"))
        with pytest.raises(AlreadyExists):
            await store.create_run(new_run(idempotency_key="k", request_hash="h2"))

    async def test_a_row_from_before_keys_were_hashed_is_found_by_its_raw_key(self, store: RunStore) -> None:
        # As older releases stored it: the raw key and an unkeyed request hash.
        old, _ = await store.create_run(new_run(idempotency_key="raw-key", request_hash="plain"))
        retry = {"idempotency_key": "hmac-sha256:ab", "legacy_idempotency_key": "raw-key"}
        again, created = await store.create_run(
            new_run(**retry, request_hash="hmac-sha256:r1", legacy_request_hash="plain")
        )
        assert not created and again.run_id == old.run_id
        with pytest.raises(AlreadyExists):
            await store.create_run(
                new_run(**retry, request_hash="hmac-sha256:r2", legacy_request_hash="other")
            )
        fresh, created = await store.create_run(
            new_run(idempotency_key="hmac-sha256:cd", legacy_idempotency_key="other")
        )
        assert created and fresh.idempotency_key == "hmac-sha256:cd"  # the raw key is never stored
        again, created = await store.create_run(
            new_run(idempotency_key="hmac-sha256:cd", legacy_idempotency_key="other")
        )
        assert not created and again.run_id == fresh.run_id

    async def test_idempotency_keys_are_per_principal(self, store: RunStore) -> None:
        a, _ = await store.create_run(new_run(idempotency_key="k"))
        b, created = await store.create_run(new_run(idempotency_key="k", principal="bob"))
        assert created and a.run_id != b.run_id

    async def test_concurrent_creates_with_one_key_make_one_run(self, store: RunStore) -> None:
        results = await asyncio.gather(
            *(store.create_run(new_run(idempotency_key="race")) for _ in range(20))
        )
        assert len({r.run_id for r, _ in results}) == 1
        assert sum(created for _, created in results) == 1

    async def test_update_applies_transition_and_fields(self, store: RunStore) -> None:
        run, _ = await store.create_run(new_run())
        running = await store.update_run(run.run_id, RunChange(RunState.RUNNING, attempt=True))
        assert running.state is RunState.RUNNING and running.attempts == 1
        again = await store.update_run(run.run_id, RunChange(RunState.RUNNING, attempt=True))
        assert again.attempts == 2
        done = await store.update_run(
            run.run_id, RunChange(RunState.SUCCEEDED, result={"ok": True}, fallback="static")
        )
        assert (done.state, done.result, done.fallback) == (RunState.SUCCEEDED, {"ok": True}, "static")

    async def test_error_is_persisted(self, store: RunStore) -> None:
        run, _ = await store.create_run(new_run())
        await store.update_run(run.run_id, RunChange(RunState.RUNNING))
        err = RunError(ErrorCategory.DEPENDENCY, "security down")
        failed = await store.update_run(run.run_id, RunChange(RunState.FAILED, error=err))
        assert (await store.get_run(run.run_id)).error == err == failed.error

    async def test_invalid_transition_is_refused_and_changes_nothing(self, store: RunStore) -> None:
        run, _ = await store.create_run(new_run())
        await store.update_run(run.run_id, RunChange(RunState.CANCELLED))
        with pytest.raises(InvalidTransition):
            await store.update_run(run.run_id, RunChange(RunState.RUNNING))
        assert (await store.get_run(run.run_id)).state is RunState.CANCELLED

    async def test_a_failed_operation_does_not_undo_its_batch_neighbours(self, store: RunStore) -> None:
        run, _ = await store.create_run(new_run())
        await store.update_run(run.run_id, RunChange(RunState.CANCELLED))
        others = [new_run() for _ in range(10)]
        outcomes = await asyncio.gather(
            store.update_run(run.run_id, RunChange(RunState.RUNNING)),
            *(store.create_run(n) for n in others),
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], InvalidTransition)
        for n in others:
            assert (await store.get_run(n.run_id)).state is RunState.PENDING

    async def test_steps_first_write_wins(self, store: RunStore) -> None:
        run, _ = await store.create_run(new_run())
        await store.record_step(run.run_id, "a", canonical_json({"v": 1}))
        await store.record_step(run.run_id, "a", canonical_json({"v": 2}))
        await store.record_step(run.run_id, "b", canonical_json([1, 2]))
        steps = await store.get_steps(run.run_id)
        assert [(s.name, s.completed, s.result) for s in steps] == [
            ("a", True, {"v": 1}),
            ("b", True, [1, 2]),
        ]
        assert steps[0].finished_at == 1000.0
        assert [s.stored_chars for s in steps] == [len('{"v":1}'), len("[1,2]")]  # what reading GetRun costs
        assert await store.get_steps("other") == []

    async def test_step_executions_count_restarts(self, store: RunStore) -> None:
        run, _ = await store.create_run(new_run())
        assert await store.begin_step(run.run_id, "s") == 1
        assert [s.completed for s in await store.get_steps(run.run_id)] == [False]
        assert await store.begin_step(run.run_id, "s") == 2  # re-executed after a crash
        await store.record_step(run.run_id, "s", canonical_json("done"))
        (step,) = await store.get_steps(run.run_id)
        assert (step.completed, step.result, step.executions) == (True, "done", 2)

    async def test_started_and_finished_times(self, store: RunStore) -> None:
        run, _ = await store.create_run(new_run())
        assert run.started_at is None and run.finished_at is None
        running = await store.update_run(run.run_id, RunChange(RunState.RUNNING))
        done = await store.update_run(run.run_id, RunChange(RunState.SUCCEEDED, result=None))
        assert running.started_at == done.started_at == 1000.0 and done.finished_at == 1000.0
        assert done.result is None

    async def test_pagination_is_stable_under_inserts(self, store: RunStore) -> None:
        ids = [(await store.create_run(new_run()))[0].run_id for _ in range(7)]
        page = await store.list_runs(RunQuery(limit=3))
        assert [r.run_id for r in page.runs] == ids[::-1][:3]
        await store.create_run(new_run())  # a newer run must not shift later pages
        seen = [r.run_id for r in page.runs]
        while page.next_seq is not None:
            page = await store.list_runs(RunQuery(limit=3, before_seq=page.next_seq))
            seen += [r.run_id for r in page.runs]
        assert seen == ids[::-1]

    async def test_list_reads_no_more_runs_than_max_chars_holds(self, store: RunStore) -> None:
        params, result = {"b": "y" * 1000}, {"r": "z" * 1000}  # 1,008 characters each, as stored
        ids = [(await store.create_run(new_run(params=params)))[0].run_id for _ in range(5)]
        running = await store.update_run(ids[3], RunChange(RunState.RUNNING, attempt=True))
        done = RunChange(RunState.SUCCEEDED, result=result)  # its result counts too
        assert (await store.update_run(ids[3], done, current=running)).stored_chars == 2016  # as derived
        assert (await store.get_run(ids[3])).stored_chars == 2016  # as read
        pages: list[list[str]] = []
        before: int | None = None
        while True:
            page = await store.list_runs(RunQuery(limit=100, max_chars=2500, before_seq=before))
            pages.append([r.run_id for r in page.runs])
            assert page.stored_chars == 1008 * len(page.runs) + (1008 if ids[3] in pages[-1] else 0)
            if page.next_seq is None:
                break
            before = page.next_seq
        # Newest first; a page stops before the run that would take it past 2,500.
        assert pages == [[ids[4]], [ids[3]], [ids[2], ids[1]], [ids[0]]]
        # A run larger than max_chars is still listed, alone: no page is empty while runs match.
        alone = await store.list_runs(RunQuery(limit=100, max_chars=10))
        assert [r.run_id for r in alone.runs] == [ids[4]] and alone.next_seq is not None
        assert len((await store.list_runs(RunQuery(limit=100))).runs) == 5  # no max_chars: the limit only

    async def test_list_filters_labels_and_time(self, store: RunStore) -> None:
        a, _ = await store.create_run(new_run(labels={"team": "x", "env": "prod"}, created_at=10.0))
        await store.create_run(new_run(labels={"team": "y"}, created_at=20.0))
        q = RunQuery(labels={"team": "x"})
        assert [r.run_id for r in (await store.list_runs(q)).runs] == [a.run_id]
        assert (await store.list_runs(RunQuery(labels={'we"ird': "x"}))).runs == []
        assert [r.created_at for r in (await store.list_runs(RunQuery(created_after=15.0))).runs] == [20.0]
        assert [r.created_at for r in (await store.list_runs(RunQuery(created_before=15.0))).runs] == [10.0]

    async def test_round_trips_labels_schedule_audit_redactions(self, store: RunStore) -> None:
        new = new_run(labels={"k": "v"}, schedule="nightly", audit_id="a-1", redactions={"email": 2})
        run, _ = await store.create_run(new)
        assert (run.labels, run.schedule, run.audit_id, run.redactions) == (
            {"k": "v"},
            "nightly",
            "a-1",
            {"email": 2},
        )

    async def test_list_filters(self, store: RunStore) -> None:
        a, _ = await store.create_run(new_run(workflow="a"))
        b, _ = await store.create_run(new_run(workflow="b", principal="bob"))
        await store.update_run(b.run_id, RunChange(RunState.CANCELLED))
        assert [r.run_id for r in (await store.list_runs(RunQuery(workflow="a"))).runs] == [a.run_id]
        assert [r.run_id for r in (await store.list_runs(RunQuery(principal="bob"))).runs] == [b.run_id]
        q = RunQuery(states=frozenset({RunState.CANCELLED}))
        assert [r.run_id for r in (await store.list_runs(q)).runs] == [b.run_id]

    async def test_claim_hands_out_due_unleased_runs_once(self, store: RunStore) -> None:
        due, _ = await store.create_run(new_run(priority=1))
        later, _ = await store.create_run(new_run(not_before=500.0))
        mine, _ = await store.create_run(new_run(lease_owner="r1", lease_expires=200.0))
        done, _ = await store.create_run(new_run())
        await store.update_run(done.run_id, RunChange(RunState.CANCELLED))
        claimed = await store.claim_runs("r2", now=100.0, lease_s=30.0, limit=10)
        assert [r.run_id for r in claimed] == [due.run_id]
        assert claimed[0].lease_owner == "r2" and claimed[0].lease_expires == 130.0
        # r2's lease is live: r3 gets nothing but the expired lease of r1 later.
        assert await store.claim_runs("r3", now=120.0, lease_s=30.0, limit=10) == []
        got = {r.run_id for r in await store.claim_runs("r3", now=600.0, lease_s=30.0, limit=10)}
        assert got == {due.run_id, later.run_id, mine.run_id}

    async def test_same_owner_reclaims_its_live_leases_after_restart(self, store: RunStore) -> None:
        run, _ = await store.create_run(new_run(lease_owner="r1", lease_expires=1e12))
        await store.update_run(run.run_id, RunChange(RunState.RUNNING, attempt=True))
        assert [r.run_id for r in await store.claim_runs("r1", 100.0, 30.0, 10)] == [run.run_id]

    async def test_renew_extends_only_own_leases(self, store: RunStore) -> None:
        run, _ = await store.create_run(new_run(lease_owner="r1", lease_expires=110.0))
        assert await store.renew_leases("r2", {run.run_id: 1}, until=999.0) == set()
        assert (await store.get_run(run.run_id)).lease_expires == 110.0
        assert await store.renew_leases("r1", {run.run_id: 1}, until=999.0) == {run.run_id}
        assert (await store.get_run(run.run_id)).lease_expires == 999.0

    async def test_renew_reports_which_leases_are_still_held(self, store: RunStore) -> None:
        kept, _ = await store.create_run(new_run(lease_owner="r1", lease_expires=110.0))
        taken, _ = await store.create_run(new_run(lease_owner="r1", lease_expires=110.0))
        ended, _ = await store.create_run(new_run(lease_owner="r1", lease_expires=110.0))
        await store.claim_runs("r2", now=200.0, lease_s=30.0, limit=10)  # r1's leases expired
        await store.update_run(ended.run_id, RunChange(RunState.CANCELLED))
        await store.renew_leases("r2", {kept.run_id: 2}, until=0.0)  # r2 lets kept's lease lapse...
        (back,) = await store.claim_runs("r1", now=300.0, lease_s=30.0, limit=1)  # ...r1 claims it back
        assert back.run_id == kept.run_id and back.lease_epoch == 3
        held = await store.renew_leases(
            "r1", {kept.run_id: 3, taken.run_id: 1, ended.run_id: 1, "nope": 1}, until=999.0
        )
        assert held == {kept.run_id}
        assert (await store.get_run(taken.run_id)).lease_owner == "r2"
        assert await store.renew_leases("r1", {}, until=999.0) == set()

    async def test_terminal_state_releases_lease(self, store: RunStore) -> None:
        run, _ = await store.create_run(new_run(lease_owner="r1", lease_expires=110.0))
        done = await store.update_run(run.run_id, RunChange(RunState.CANCELLED))
        assert done.lease_owner is None and done.lease_expires is None
