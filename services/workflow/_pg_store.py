"""PostgreSQL implementation of `RunStore`, shared safely by several workflow replicas.

Each operation is one statement (two for an idempotent repeat) in autocommit mode on a
pooled connection: one round trip and one commit, no BEGIN/COMMIT. What makes sharing safe:

- ``claim_runs`` selects due runs ``FOR UPDATE SKIP LOCKED`` and leases them in the same
  statement: two replicas claiming at once get disjoint runs, never wait on each other, and
  a run whose lease is live (its owner is executing it) is not handed out at all. When a
  replica dies its leases stop being renewed; once they expire another replica claims them.
- ``update_run`` is a compare-and-set: the UPDATE only matches the run while it is in a
  state from which `transition` allows the target (the row lock UPDATE takes makes the check
  and the write atomic), so two writers can never both move a run; a refused change is then
  explained by `transition` itself (InvalidTransition) or NotFound.
- Fencing: ``claim_runs`` increments ``lease_epoch``; a fenced ``update_run`` has the lease
  in its WHERE (the row lock UPDATE takes makes check and write one step), and a fenced step
  write takes its row from the run's row locked ``FOR SHARE`` while it still has the lease:
  a takeover (whose claim skips locked rows) commits strictly before or after it.
- ``record_step`` is first-write-wins (``WHERE NOT completed``): a finished step's result
  never changes, whoever writes it again.

Connection failures surface as `Unavailable` (retryable), never as an internal error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from services.common import InvalidArgument, NotFound, Unavailable
from services.workflow._history import (
    HistoryEvent,
    HistoryType,
    change_event_type,
    creation_events,
    error_json,
    event_from_row,
    event_to_row,
)
from services.workflow._model import (
    Lease,
    NewRun,
    Run,
    RunChange,
    RunError,
    RunPage,
    RunQuery,
    StepRecord,
)
from services.workflow._pg_config import PostgresConfig, read_password
from services.workflow._pg_history import (
    ATTEMPT_DATA,
    FINISHED_DATA,
    STEP_DATA,
    STEP_FAILED_DATA,
    with_event,
    with_events,
)
from services.workflow._pg_schema import migrate
from services.workflow._states import RunState
from services.workflow._store_rows import (
    CHANGED_COLUMNS,
    INSERT_COLUMNS,
    INSERT_COUNT,
    change_sets,
    changed_run,
    cut_page,
    event_args,
    event_insert,
    existing_run,
    explain_refusal,
    fence_sql,
    insert_values,
    lease_lost,
    page_rows_sql,
    page_sizes_sql,
    query_filters,
    row_to_run,
    row_to_step,
    source_states,
    to_page,
)

__all__ = ["PostgresRunStore"]

Row = dict[str, Any]
_OPEN = "state IN ('PENDING', 'RUNNING')"
_MARKS = ", ".join(["%s"] * INSERT_COUNT)
# The run's row while it has the writer's lease (args: run id, owner, epoch): the source of a
# fenced step write, which thereby writes nothing once the lease moved.
_FENCE = "FROM runs WHERE run_id = %s AND lease_owner = %s AND lease_epoch = %s"
_EVENT = event_insert("%s")


async def _one(conn: psycopg.AsyncConnection[Row], sql: str, args: Any = None) -> Row | None:
    cur = await conn.execute(sql, args)
    return await cur.fetchone()


async def _select_run(conn: psycopg.AsyncConnection[Row], run_id: str) -> Run:
    row = await _one(conn, "SELECT * FROM runs WHERE run_id = %s", (run_id,))
    if row is None:
        raise NotFound(f"run {run_id!r} not found")
    return row_to_run(row)


class PostgresRunStore:
    """`RunStore` on PostgreSQL (see the module docstring for the concurrency design).

    Args:
        config: DSN, password file, pool size and connect timeout.
        clock: Wall-clock seconds used for ``updated_at`` and ``finished_at``.
    """

    def __init__(self, config: PostgresConfig, *, clock: Callable[[], float]) -> None:
        self._config = config
        self._clock = clock
        kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
        password = read_password(config)
        if password is not None:
            kwargs["password"] = password
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]] = AsyncConnectionPool(
            config.dsn,
            kwargs=kwargs,
            min_size=1,
            max_size=config.pool_size,
            timeout=config.connect_timeout_s,
            open=False,
            name="runstore",
        )
        self._opened = False

    async def open(self) -> None:
        if self._opened:
            return
        try:
            await self._pool.open(wait=True, timeout=self._config.connect_timeout_s)
        except PoolTimeout as exc:  # an OSError, so start-up fails with one line (exit 1)
            raise ConnectionError(f"run store: cannot connect to PostgreSQL: {exc}") from None
        try:
            async with self._pool.connection() as conn:
                await migrate(conn)
        except psycopg.OperationalError as exc:
            raise ConnectionError(f"run store: cannot migrate the schema: {exc}") from None
        self._opened = True

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
        """A pooled autocommit connection; connection trouble is `Unavailable`."""
        try:
            async with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise Unavailable(f"run store unavailable: {exc}") from None
        except psycopg.errors.ReadOnlySqlTransaction as exc:  # a standby after failover: try later
            raise Unavailable(f"run store is read-only: {exc}") from None
        except psycopg.DataError as exc:  # a value PostgreSQL cannot store; the edge should catch it first
            raise InvalidArgument(f"value not accepted by the run store: {exc}") from None

    async def probe(self) -> None:
        async with self._conn() as conn, conn.transaction(force_rollback=True):
            await conn.execute("SELECT 1")
            # A write that changes nothing and is rolled back: fails on a read-only database
            # (a standby after failover, default_transaction_read_only) as a real write would.
            await conn.execute("UPDATE runs SET lease_owner = lease_owner WHERE false")

    async def create_run(self, new: NewRun) -> tuple[Run, bool]:
        insert = (
            f"INSERT INTO runs ({INSERT_COLUMNS}) VALUES ({_MARKS})"
            " ON CONFLICT (principal, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
            " RETURNING *"
        )
        events = creation_events(new.created_at, new.started)
        args: list[Any] = [*insert_values(new, Jsonb(new.labels)), new.created_at]
        args += [v for event in events for v in event_to_row(event)]
        extra = ""
        if new.resume and new.retry_of:  # the finished steps of the run retried, in their order
            extra = (
                ", c AS (INSERT INTO steps (run_id, name, executions, completed, result, finished_at,"
                " started_at, duration_s) SELECT w.run_id, s.name, 0, s.completed, s.result,"
                " s.finished_at, s.started_at, s.duration_s FROM w JOIN steps s"
                " ON s.run_id = %s AND s.completed ORDER BY s.ord)"
            )
            args.append(new.retry_of)
        async with self._conn() as conn:
            if new.legacy_idempotency_key is not None:
                # A row from before keys were hashed holds the raw key (none is written any more,
                # so no insert can race this read).
                row = await _one(
                    conn,
                    "SELECT * FROM runs WHERE principal = %s AND idempotency_key = %s",
                    (new.principal, new.legacy_idempotency_key),
                )
                if row is not None:
                    return existing_run(row, new)
            # ON CONFLICT DO NOTHING waits for a concurrent insert of the same key to commit,
            # so of N racing creates exactly one inserts and the others read its run. The run,
            # its copied steps and its creation events are one statement.
            row = await _one(conn, with_events(insert, len(events), extra=extra), args)
            if row is not None:
                return row_to_run(row), True
            row = await _one(
                conn,
                "SELECT * FROM runs WHERE principal = %s AND idempotency_key = %s",
                (new.principal, new.idempotency_key),
            )
        if row is None:  # cannot happen: the conflicting row is committed and never deleted
            raise Unavailable("run store: idempotent run vanished; retry")
        return existing_run(row, new)

    async def get_run(self, run_id: str) -> Run:
        async with self._conn() as conn:
            return await _select_run(conn, run_id)

    async def list_runs(self, query: RunQuery) -> RunPage:
        def labels(wanted: Mapping[str, str]) -> tuple[list[str], list[Any]]:
            return ["labels @> %s"], [Jsonb(dict(wanted))]

        def states(names: list[str]) -> tuple[str, list[Any]]:
            return "state = ANY(%s)", [names]

        where, args = query_filters(query, "%s", labels, states)
        async with self._conn() as conn:
            sizes = await conn.execute(page_sizes_sql(where, "%s"), [*args, query.limit + 1])
            cut = cut_page([(r["seq"], r["stored_chars"]) for r in await sizes.fetchall()], query)
            if cut is None:
                return RunPage()
            cur = await conn.execute(page_rows_sql(where, "%s"), [*args, cut.first_seq, cut.last_seq])
            runs = [row_to_run(r) for r in await cur.fetchall()]
        return to_page(runs, cut)

    async def update_run(
        self, run_id: str, change: RunChange, lease: Lease | None = None, current: Run | None = None
    ) -> Run:
        # The states `transition` lets move to the target: the compare half of compare-and-set.
        sources = source_states(change.state)
        state = change.state
        now = self._clock()
        sets, args = change_sets(change, now, "%s")
        fence, fence_args = fence_sql(lease, "%s")
        # The event CTE reads run_id, state, attempts, created_at and finished_at of the row.
        returning = "*" if current is None else f"run_id, state, created_at, finished_at, {CHANGED_COLUMNS}"
        sql = (
            f"UPDATE runs SET {', '.join(sets)} WHERE run_id = %s AND state = ANY(%s){fence}"
            f" RETURNING {returning}"
        )
        args += [run_id, sources, *fence_args]
        kind = change_event_type(change)  # its event is part of the same statement
        if kind is HistoryType.ATTEMPT_STARTED:
            sql = with_event(sql, kind, ATTEMPT_DATA)
            args.append(now)
        elif kind is HistoryType.RUN_FINISHED:
            sql = with_event(sql, kind, FINISHED_DATA)
            failed = change.error if state is not RunState.SUCCEEDED else None
            args += [now, error_json(failed), change.fallback]
        async with self._conn() as conn:
            while True:
                row = await _one(conn, sql, args)
                if row is not None:
                    return row_to_run(row) if current is None else changed_run(current, change, now, row)
                # NotFound, LeaseLost or InvalidTransition; or allowed now: another writer
                # moved the run between our two statements. Runs only move forward through
                # finitely many states, so this loop ends.
                explain_refusal(await _select_run(conn, run_id), state, lease)

    async def begin_step(self, run_id: str, name: str, lease: Lease | None = None) -> int:
        now = self._clock()
        source, args = "VALUES (%s, %s, 1, %s)", [run_id, name, now]
        if lease is not None:  # the run's row, locked, while it still has the writer's live lease
            source = f"(SELECT run_id, %s, 1, %s::float8 {_FENCE} AND lease_expires >= %s FOR SHARE)"
            args = [name, now, run_id, lease.owner, lease.epoch, now]
        write = (
            "INSERT INTO steps (run_id, name, executions, started_at) "
            + source
            + " ON CONFLICT (run_id, name)"
            " DO UPDATE SET executions = steps.executions + 1,"
            " started_at = excluded.started_at RETURNING run_id, name, executions, duration_s"
        )
        async with self._conn() as conn:
            sql = with_event(write, HistoryType.STEP_STARTED, STEP_DATA)
            row = await _one(conn, sql, (*args, now))
        if row is None:  # only when fenced: the lease moved or expired, nothing was written
            assert lease is not None
            raise lease_lost(run_id, lease)
        return int(row["executions"])

    async def record_step(self, run_id: str, name: str, result_json: str, lease: Lease | None = None) -> None:
        now = self._clock()
        source, args = "VALUES (%s, %s, 1, TRUE, %s, %s, 0)", [run_id, name, result_json, now]
        if lease is not None:  # the run's row, locked, while it still has the writer's lease
            source = f"(SELECT run_id, %s, 1, TRUE, %s::text, %s::float8, 0 {_FENCE} FOR SHARE)"
            args = [name, result_json, now, run_id, lease.owner, lease.epoch]
        # First write wins (WHERE NOT completed): a repeated finish changes and records nothing.
        write = (
            "INSERT INTO steps (run_id, name, executions, completed, result, finished_at, duration_s) "
            + source
            + " ON CONFLICT (run_id, name) DO UPDATE SET"
            " completed = TRUE, result = excluded.result, finished_at = excluded.finished_at,"
            " duration_s = GREATEST(0, excluded.finished_at"
            " - COALESCE(steps.started_at, excluded.finished_at)),"
            " error_category = NULL, error_message = NULL"
            " WHERE NOT steps.completed RETURNING run_id, name, executions, duration_s"
        )
        async with self._conn() as conn:
            sql = with_event(write, HistoryType.STEP_FINISHED, STEP_DATA)
            row = await _one(conn, sql, (*args, now))
            # Nothing stored: finished before (first write wins, fine) or the lease moved (refused).
            if row is None and lease is not None and (await _select_run(conn, run_id)).lease != lease:
                raise lease_lost(run_id, lease)

    async def fail_step(self, run_id: str, name: str, error: RunError, lease: Lease | None = None) -> None:
        now = self._clock()
        fence, fence_args = "", list[Any]()
        if lease is not None:  # the run's row, locked, while it still has the writer's lease
            fence = f" AND EXISTS (SELECT 1 {_FENCE} FOR SHARE)"
            fence_args = [run_id, lease.owner, lease.epoch]
        write = (
            "UPDATE steps SET error_category = %s, error_message = %s,"
            " duration_s = GREATEST(0, %s - COALESCE(started_at, %s))"
            f" WHERE run_id = %s AND name = %s AND NOT completed{fence}"
            " RETURNING run_id, name, executions, duration_s"
        )
        args = (error.category.value, error.message, now, now, run_id, name, *fence_args)
        args += (now, error_json(error))
        async with self._conn() as conn:
            row = await _one(conn, with_event(write, HistoryType.STEP_FAILED, STEP_FAILED_DATA), args)
            # Nothing stored: the step finished (kept as it is) or the lease moved (refused).
            if row is None and lease is not None and (await _select_run(conn, run_id)).lease != lease:
                raise lease_lost(run_id, lease)

    async def append_event(self, run_id: str, event: HistoryEvent, lease: Lease | None = None) -> None:
        async with self._conn() as conn:
            if lease is None:
                await conn.execute(_EVENT, event_args(run_id, event))
                return
            cur = await conn.execute(
                "INSERT INTO run_events (run_id, at, type, data)"
                f" SELECT run_id, %s, %s, %s {_FENCE} FOR SHARE",
                (event.at, *event_to_row(event), run_id, lease.owner, lease.epoch),
            )
            if cur.rowcount == 0:  # the lease moved: nothing was written
                raise lease_lost(run_id, lease)

    async def get_history(self, run_id: str) -> list[HistoryEvent]:
        async with self._conn() as conn:
            cur = await conn.execute(
                "SELECT at, type, data FROM run_events WHERE run_id = %s ORDER BY id", (run_id,)
            )
            rows = await cur.fetchall()
        return [event_from_row(i, r["at"], r["type"], r["data"]) for i, r in enumerate(rows, 1)]

    async def get_steps(self, run_id: str) -> list[StepRecord]:
        async with self._conn() as conn:
            cur = await conn.execute("SELECT * FROM steps WHERE run_id = %s ORDER BY ord", (run_id,))
            rows = await cur.fetchall()
        return [row_to_step(r) for r in rows]

    async def claim_runs(
        self, owner: str, now: float, lease_s: float, limit: int, skip: Collection[str] = ()
    ) -> list[Run]:
        async with self._conn() as conn:
            # SKIP LOCKED: rows another replica is claiming or updating right now are passed
            # over (it holds them), so concurrent claimers get disjoint sets without waiting.
            cur = await conn.execute(
                "WITH due AS (SELECT run_id FROM runs WHERE " + _OPEN + " AND (not_before IS NULL OR"
                " not_before <= %(now)s) AND (lease_owner IS NULL OR lease_owner = %(owner)s OR"
                " lease_expires < %(now)s) AND run_id <> ALL(%(skip)s::text[])"
                " ORDER BY priority DESC, seq LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
                " UPDATE runs SET lease_owner = %(owner)s, lease_expires = %(until)s,"
                " lease_epoch = runs.lease_epoch + 1"
                " FROM due WHERE runs.run_id = due.run_id RETURNING runs.*",
                {"owner": owner, "now": now, "until": now + lease_s, "limit": limit, "skip": list(skip)},
            )
            rows = await cur.fetchall()
        return sorted((row_to_run(r) for r in rows), key=lambda r: (-r.priority, r.seq))

    async def renew_leases(self, owner: str, held: Mapping[str, int], until: float) -> set[str]:
        if not held:
            return set()
        async with self._conn() as conn:
            cur = await conn.execute(
                "UPDATE runs SET lease_expires = %s FROM unnest(%s::text[], %s::bigint[]) AS h(id, epoch)"
                " WHERE runs.run_id = h.id AND runs.lease_epoch = h.epoch AND lease_owner = %s AND "
                + _OPEN
                + " RETURNING runs.run_id",
                (until, list(held), list(held.values()), owner),
            )
            rows = await cur.fetchall()
        return {r["run_id"] for r in rows}
