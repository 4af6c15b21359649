"""A workflow service on PostgreSQL: grpc.health.v1 follows the database (NOT_SERVING while it
refuses writes or connections), and text PostgreSQL cannot store is INVALID_ARGUMENT."""

from __future__ import annotations

import psycopg
import pytest

from services.common import InvalidArgument, Unavailable
from services.workflow.client import pb
from tests.conftest import eventually
from tests.integration.workflow.conftest import SecurityEnv, StartWorkflow, client
from tests.integration.workflow.test_store_health import FAST_PROBE, NOT_SERVING, SERVING, watching
from tests.postgres import PostgresServer


async def test_postgres_refusing_writes_or_connections_turns_health_not_serving(
    start_workflow: StartWorkflow, security: SecurityEnv, postgres_server: PostgresServer, postgres_dsn: str
) -> None:
    dbname = postgres_dsn.rsplit("dbname=", 1)[1]
    app = await start_workflow(
        security.address,
        store_backend="postgres",
        postgres={"dsn": postgres_dsn, "pool_size": 2},
        **FAST_PROBE,
    )

    def admin(*statements: str) -> None:
        with psycopg.connect(postgres_server.dsn(), autocommit=True) as conn:
            for sql in statements:
                conn.execute(sql)

    kick = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{dbname}'"
    async with watching(app) as w:
        # Read-only (a standby after failover): SELECT 1 still works, the write probe does not.
        admin(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on', kick)
        await eventually(lambda: w.latest_is(NOT_SERVING))
        async with client(app, security.alice) as c:  # what StartRun answers meanwhile
            with pytest.raises(Unavailable, match="run store"):
                await c.start_run("echo", {})
        admin(f'ALTER DATABASE "{dbname}" RESET default_transaction_read_only', kick)
        await eventually(lambda: w.latest_is(SERVING))
        # Down: every connection dropped and new ones refused.
        admin(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false', kick)
        await eventually(lambda: w.latest_is(NOT_SERVING))
        admin(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        await eventually(lambda: w.latest_is(SERVING), timeout=10)


async def test_nul_characters_are_invalid_argument_on_postgres(
    start_workflow: StartWorkflow, security: SecurityEnv, postgres_dsn: str
) -> None:
    app = await start_workflow(security.address, store_backend="postgres", postgres={"dsn": postgres_dsn})
    async with client(app, security.alice) as c:
        with pytest.raises(InvalidArgument, match="idempotency_key"):
            await c.start_run("echo", {}, idempotency_key="a\x00b")
        with pytest.raises(InvalidArgument, match="labels"):
            await c.start_run("echo", {}, labels={"k": "\x00"})
        with pytest.raises(InvalidArgument, match="run_id"):
            await c.get_run("r\x00")
        run, created = await c.start_run("echo", {"a": 1}, wait=True, timeout_s=10)
    assert created and run.state == pb.RUN_STATE_SUCCEEDED
