"""The backend-independent RunStore suite, against a real PostgreSQL, plus what only
PostgreSQL has: versioned migrations and several replicas claiming concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from services.common import InvalidArgument, Unavailable
from services.workflow._model import Lease, LeaseLost, RunChange, RunQuery
from services.workflow._pg_config import PostgresConfig
from services.workflow._pg_schema import MIGRATIONS, Migration, applied_versions, migrate
from services.workflow._pg_store import PostgresRunStore
from services.workflow._states import InvalidTransition, RunState
from tests.unit.workflow.fencing_suite import FencingSuite
from tests.unit.workflow.history_suite import RunHistorySuite
from tests.unit.workflow.store_suite import V1_LEASED_RUN, RunStoreSuite, new_run


async def _open(dsn: str, **kw: object) -> PostgresRunStore:
    s = PostgresRunStore(PostgresConfig(dsn=dsn, **kw), clock=lambda: 1000.0)  # type: ignore[arg-type]
    await s.open()
    return s


@pytest.fixture
async def store(postgres_dsn: str) -> AsyncIterator[PostgresRunStore]:
    s = await _open(postgres_dsn)
    yield s
    await s.close()


class TestPostgresRunStore(RunStoreSuite, FencingSuite, RunHistorySuite):
    async def test_values_postgres_cannot_store_are_invalid_argument(self, store: PostgresRunStore) -> None:
        # The service refuses NUL characters at the edge; the store maps psycopg's DataError
        # itself too, so a value that slips past is a client error, never INTERNAL.
        with pytest.raises(InvalidArgument, match="run store"):
            await store.create_run(new_run(labels={"k": "v\x00"}))
        with pytest.raises(InvalidArgument, match="run store"):
            await store.get_run("r\x00")
        run, _ = await store.create_run(new_run())  # the pool is fine afterwards
        assert (await store.get_run(run.run_id)).run_id == run.run_id

    async def test_committed_before_create_returns(self, store: PostgresRunStore, postgres_dsn: str) -> None:
        new = new_run()
        await store.create_run(new)
        # An independent connection (another replica) sees the run.
        with psycopg.connect(postgres_dsn) as conn:
            row = conn.execute("SELECT state FROM runs WHERE run_id = %s", (new.run_id,)).fetchone()
        assert row == ("PENDING",)

    async def test_reopen_keeps_runs_and_applies_no_migration_twice(self, postgres_dsn: str) -> None:
        first = await _open(postgres_dsn)
        run, _ = await first.create_run(new_run())
        await first.close()
        second = await _open(postgres_dsn)
        assert (await second.get_run(run.run_id)).run_id == run.run_id
        await second.close()
        with psycopg.connect(postgres_dsn) as conn:
            rows = conn.execute("SELECT version FROM vigil_schema_migrations").fetchall()
        assert rows == [(m.version,) for m in MIGRATIONS]

    async def test_replicas_starting_together_migrate_once(self, postgres_dsn: str) -> None:
        stores = await asyncio.gather(*(_open(postgres_dsn) for _ in range(4)))
        for s in stores:
            await s.close()
        async with await psycopg.AsyncConnection.connect(postgres_dsn, autocommit=True) as conn:
            assert await applied_versions(conn) == [m.version for m in MIGRATIONS]

    async def test_new_migration_applies_on_top_and_a_failing_one_changes_nothing(
        self, store: PostgresRunStore, postgres_dsn: str
    ) -> None:
        later = (
            *MIGRATIONS,
            Migration(len(MIGRATIONS) + 1, "extra", "ALTER TABLE runs ADD COLUMN extra TEXT"),
        )
        broken = (*later, Migration(len(later) + 1, "broken", "ALTER TABLE nope ADD COLUMN x TEXT"))
        async with await psycopg.AsyncConnection.connect(postgres_dsn, autocommit=True) as conn:
            assert await migrate(conn, later) == [len(later)]
            with pytest.raises(psycopg.errors.UndefinedTable):
                await migrate(conn, broken)
            assert await applied_versions(conn) == [m.version for m in later]
            # The database is now newer than this release: refuse to run on it.
            with pytest.raises(RuntimeError, match="unknown to this release"):
                await migrate(conn, MIGRATIONS)

    async def test_a_database_of_the_previous_version_gets_lease_epochs_and_its_runs_stay_claimable(
        self, postgres_dsn: str
    ) -> None:
        async with await psycopg.AsyncConnection.connect(postgres_dsn, autocommit=True) as conn:
            await conn.execute("DROP TABLE IF EXISTS runs, steps, run_events, vigil_schema_migrations")
            previous = MIGRATIONS[:-1]  # the release before lease epochs
            assert await migrate(conn, previous) == [m.version for m in previous]
            await conn.execute(V1_LEASED_RUN)
        store = await _open(postgres_dsn)
        try:
            assert (await store.get_run("v1-run")).lease == Lease("old-replica", 0)
            (claimed,) = await store.claim_runs("new-replica", now=1000.0, lease_s=30.0, limit=10)
            assert claimed.lease == Lease("new-replica", 1)
            assert await store.begin_step("v1-run", "s", claimed.lease) == 1
            with pytest.raises(LeaseLost):
                await store.begin_step("v1-run", "s", Lease("old-replica", 0))
        finally:
            await store.close()
        async with await psycopg.AsyncConnection.connect(postgres_dsn, autocommit=True) as conn:
            assert await applied_versions(conn) == [m.version for m in MIGRATIONS]

    async def test_concurrent_claimers_get_disjoint_runs(
        self, store: PostgresRunStore, postgres_dsn: str
    ) -> None:
        ids = {(await store.create_run(new_run()))[0].run_id for _ in range(60)}
        replicas = [await _open(postgres_dsn) for _ in range(3)]
        try:
            claims = await asyncio.gather(
                *(r.claim_runs(f"r{i}", now=100.0, lease_s=30.0, limit=25) for i, r in enumerate(replicas))
            )
        finally:
            for r in replicas:
                await r.close()
        claimed = [run.run_id for batch in claims for run in batch]
        assert len(claimed) == len(set(claimed)) == 60 and set(claimed) == ids
        for i, batch in enumerate(claims):
            assert all(run.lease_owner == f"r{i}" for run in batch)

    async def test_dead_replicas_runs_are_taken_over_after_lease_expiry(
        self, store: PostgresRunStore
    ) -> None:
        run, _ = await store.create_run(new_run(lease_owner="dead", lease_expires=130.0))
        await store.update_run(run.run_id, RunChange(RunState.RUNNING, attempt=True))
        await store.renew_leases("dead", {run.run_id: 1}, until=140.0)
        assert await store.claim_runs("alive", now=139.0, lease_s=30.0, limit=10) == []
        (taken,) = await store.claim_runs("alive", now=141.0, lease_s=30.0, limit=10)
        assert (taken.run_id, taken.lease_owner, taken.lease_expires) == (run.run_id, "alive", 171.0)
        await store.renew_leases("dead", {run.run_id: 1}, until=999.0)  # too late: no longer its run
        assert (await store.get_run(run.run_id)).lease_owner == "alive"

    async def test_racing_final_states_one_wins(self, store: PostgresRunStore, postgres_dsn: str) -> None:
        replicas = [await _open(postgres_dsn) for _ in range(3)]
        try:
            for _ in range(5):
                run, _ = await store.create_run(new_run())
                await store.update_run(run.run_id, RunChange(RunState.RUNNING, attempt=True))
                changes = [RunChange(RunState.SUCCEEDED, result=i) for i in range(6)]
                changes += [RunChange(RunState.CANCELLED) for _ in range(6)]
                outcomes = await asyncio.gather(
                    *(replicas[i % 3].update_run(run.run_id, c) for i, c in enumerate(changes)),
                    return_exceptions=True,
                )
                won = [o for o in outcomes if not isinstance(o, BaseException)]
                assert len(won) == 1 and all(
                    isinstance(o, InvalidTransition) for o in outcomes if o not in won
                )
                assert await store.get_run(run.run_id) == won[0]
        finally:
            for r in replicas:
                await r.close()

    async def test_labels_with_quotes_and_nested_json(self, store: PostgresRunStore) -> None:
        a, _ = await store.create_run(new_run(labels={'we"ird': "x'y"}))
        page = await store.list_runs(RunQuery(labels={'we"ird': "x'y"}))
        assert [r.run_id for r in page.runs] == [a.run_id]

    async def test_unreachable_database_fails_start_with_one_clear_error(self) -> None:
        with pytest.raises(ConnectionError, match="cannot connect to PostgreSQL"):
            await _open("host=127.0.0.1 port=1 dbname=x user=x connect_timeout=1", connect_timeout_s=1.0)

    async def test_lost_database_is_unavailable_not_internal(self, postgres_server: object) -> None:
        from tests.postgres import PostgresServer

        assert isinstance(postgres_server, PostgresServer)
        dsn = postgres_server.database()
        s = await _open(dsn, connect_timeout_s=1.0)
        try:
            dbname = dsn.rsplit("=", 1)[1]
            with psycopg.connect(postgres_server.dsn(), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
            with pytest.raises(Unavailable):
                await s.get_run("x")
        finally:
            await s.close()
