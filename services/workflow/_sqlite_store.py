"""SQLite (WAL) implementation of `RunStore` built for throughput with group commit.

All writes go to one writer thread that owns one connection. It takes every operation
queued while the previous transaction was committing and runs them in a single
transaction (each inside its own SAVEPOINT so one failing operation does not undo the
others), then commits once: N concurrent StartRuns cost one fsync, not N. Reads run on
a second thread with its own connection; WAL lets them proceed while the writer commits.
The event loop never waits on SQLite: it only queues work and awaits a future.

Several processes may share one file (workflow replicas): every write transaction is
``BEGIN IMMEDIATE`` (the file's write lock, waited for up to the busy timeout), so a claim,
a renewal and a fenced write each see and change the lease atomically, as on PostgreSQL.
Fencing: writes of a run's executor carry its `Lease` and only land while the run's
``lease_owner``/``lease_epoch`` still match (else `LeaseLost`); ``claim_runs`` bumps the epoch.

Space (`StoreSpaceConfig`): below the free-space reserve new runs are refused while the
accepted ones keep writing; when idle the writer checkpoints the WAL (truncating it while
space is plentiful) and keeps a few pages pre-allocated in the file (`_housekeep`).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

from services.common import (
    SYNCHRONOUS_MODES,
    BatchWriter,
    NotFound,
    ResourceExhausted,
    Unavailable,
    VolumeSpace,
    migrate_sqlite,
    open_sqlite,
    run_each,
    run_in_savepoints,
)
from services.workflow import _sqlite_steps as steps
from services.workflow._config import StoreSpaceConfig
from services.workflow._history import (
    HistoryEvent,
    change_event,
    creation_events,
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
    canonical_json,
)
from services.workflow._sqlite_schema import MIGRATIONS
from services.workflow._sqlite_space import housekeep
from services.workflow._store_rows import (
    CHANGED_COLUMNS,
    INSERT_COLUMNS,
    INSERT_COUNT,
    change_sets,
    changed_run,
    created_run,
    cut_page,
    event_args,
    existing_run,
    explain_refusal,
    fence_sql,
    insert_values,
    page_rows_sql,
    page_sizes_sql,
    query_filters,
    row_to_run,
    source_states,
    to_page,
)

__all__ = ["SQLiteRunStore"]

_MARKS = ", ".join("?" * INSERT_COUNT)
# RetryRun with resume: the retried run's finished steps, copied into the new run (args: new, old).
_COPY_FINISHED_STEPS = (
    "INSERT INTO steps (run_id, name, executions, completed, result, finished_at, started_at, duration_s)"
    " SELECT ?, name, 0, completed, result, finished_at, started_at, duration_s FROM steps"
    " WHERE run_id = ? AND completed = 1 ORDER BY rowid"
)
_RENEW_CHUNK = 400  # (id, epoch) pairs per statement: bounded host parameters
# Upper bound on operations per transaction: keeps one commit's latency bounded.
_MAX_BATCH = 512
_BUSY_TIMEOUT_MS = 5000
_IDLE_S = 1.0  # writer idle this long: checkpoint the WAL, top up pre-allocated pages
_MIB = 1 << 20

T = TypeVar("T")
_Op = Callable[[sqlite3.Connection], Any]
_Thread = BatchWriter[_Op, Any]


def _store_error(exc: Exception) -> Exception:
    """SQLite failures reach callers as Unavailable (the store cannot serve), never INTERNAL."""
    if isinstance(exc, sqlite3.Error):
        return Unavailable(f"run store unavailable: {exc}")
    return exc


def _closed() -> Exception:
    return Unavailable("run store is closed")


def _connect(path: str, synchronous: str, wal_limit_bytes: int) -> sqlite3.Connection:
    conn = open_sqlite(
        path, synchronous=synchronous, busy_timeout_ms=_BUSY_TIMEOUT_MS, wal_limit_bytes=wal_limit_bytes
    )
    conn.row_factory = sqlite3.Row
    return conn


def _select_run(conn: sqlite3.Connection, run_id: str) -> Run:
    row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise NotFound(f"run {run_id!r} not found")
    return row_to_run(row)


class SQLiteRunStore:
    """`RunStore` on one SQLite file in WAL mode (see the module docstring for the design).

    Args:
        path: Database file (created 0600, missing directories 0700); ``:memory:`` is not supported
            because the reader and writer need to share the database.
        clock: Wall-clock seconds used for ``updated_at``.
        synchronous: ``FULL`` (fsync per commit: survives power loss) or ``NORMAL``
            (survives a process crash only).
        space: Free-space reserve, WAL bound and pre-allocation.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float],
        synchronous: str = "FULL",
        space: StoreSpaceConfig | None = None,
    ) -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        self._path = Path(path)
        self._clock = clock
        self._sync = synchronous
        self._space_cfg = space or StoreSpaceConfig()
        self.space = VolumeSpace(
            self._path, reserve_mb=self._space_cfg.reserve_mb, reserve_percent=self._space_cfg.reserve_percent
        )
        """The volume's free space against the reserve (read by the metrics and the probe)."""
        # Each thread owns its connection; both exist between open() and close() only.
        self._conns: list[sqlite3.Connection] = []
        self._writer: _Thread | None = None
        self._reader: _Thread | None = None

    async def open(self) -> None:
        """Open (or create) the file and migrate its schema to the latest version.

        Raises:
            SchemaTooNew: the file was migrated by a newer release.
        """
        if self._writer is not None:
            return
        # Connecting and migrating block briefly; keep them off the event loop.
        await asyncio.to_thread(self._open_connections)
        writer, reader = self._conns
        self._writer = BatchWriter(
            lambda ops: run_in_savepoints(writer, ops, _store_error),
            name="runstore-writer",
            limit=_MAX_BATCH,
            closed=_closed,
            idle=lambda: housekeep(writer, self.space, self._space_cfg),
            idle_s=_IDLE_S,
        )
        self._reader = BatchWriter(
            lambda ops: run_each(reader, ops, _store_error),
            name="runstore-reader",
            limit=_MAX_BATCH,
            closed=_closed,
        )

    def _open_connections(self) -> None:
        wal_limit = int(self._space_cfg.wal_limit_mb * _MIB)
        writer = _connect(str(self._path), self._sync, wal_limit)
        try:
            migrate_sqlite(writer, MIGRATIONS, what=f"run store {self._path}", upgrade="the workflow service")
            self._conns = [writer, _connect(str(self._path), self._sync, wal_limit)]
        except BaseException:
            writer.close()
            raise

    async def close(self) -> None:
        """Commit what was queued, then stop both threads and close the file."""
        for thread in (self._writer, self._reader):
            if thread is not None:
                await asyncio.to_thread(thread.close)
        for conn in self._conns:
            conn.close()
        self._conns = []

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` in the writer's next transaction; returns once it is committed."""
        if self._writer is None:
            raise _closed()
        result: T = await self._writer.submit(op)
        return result

    async def _read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        if self._reader is None:
            raise _closed()
        result: T = await self._reader.submit(op)
        return result

    async def probe(self) -> None:
        now = self._clock()

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO store_probe (id, at) VALUES (1, ?)"
                " ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                (now,),
            )

        await self._write(write)  # committed with its batch: Unavailable if the commit fails
        await self._read(lambda conn: conn.execute("SELECT at FROM store_probe").fetchone())

    def _refuse_if_low(self) -> None:
        sample = self.space.sample()
        if sample.low:
            raise ResourceExhausted(
                f"run store volume is low on space ({sample.describe()}); new runs are refused, retry later",
                retry_after_s=self._space_cfg.retry_after_s,
            )

    async def create_run(self, new: NewRun) -> tuple[Run, bool]:
        def op(conn: sqlite3.Connection) -> tuple[Run, bool]:
            if new.idempotency_key is not None:
                # The hashed key first; a row from before keys were hashed holds the raw one.
                row = conn.execute(
                    "SELECT * FROM runs WHERE principal = ? AND idempotency_key IN (?, ?)"
                    " ORDER BY idempotency_key = ? DESC LIMIT 1",
                    (
                        new.principal,
                        new.idempotency_key,
                        new.legacy_idempotency_key or new.idempotency_key,
                        new.idempotency_key,
                    ),
                ).fetchone()
                if row is not None:
                    return existing_run(row, new)
            self._refuse_if_low()  # an idempotent repeat above is answered even when space is low
            values = insert_values(new, canonical_json(new.labels))
            (seq,) = conn.execute(
                f"INSERT INTO runs ({INSERT_COLUMNS}) VALUES ({_MARKS}) RETURNING seq", values
            ).fetchone()
            if new.resume and new.retry_of:
                conn.execute(_COPY_FINISHED_STEPS, (new.run_id, new.retry_of))
            for event in creation_events(new.created_at, new.started):
                conn.execute(steps.EVENT_SQL, event_args(new.run_id, event))
            return created_run(values, seq), True

        return await self._write(op)

    async def get_run(self, run_id: str) -> Run:
        return await self._read(lambda conn: _select_run(conn, run_id))

    async def list_runs(self, query: RunQuery) -> RunPage:
        def labels(wanted: Mapping[str, str]) -> tuple[list[str], list[Any]]:
            conds, args = [], []
            for key, value in sorted(wanted.items()):
                conds.append("json_extract(labels, ?) = ?")
                args += ['$."' + key.replace('"', '""') + '"', value]
            return conds, args

        def states(names: list[str]) -> tuple[str, list[Any]]:
            return f"state IN ({', '.join('?' * len(names))})", list(names)

        where, args = query_filters(query, "?", labels, states)

        def op(conn: sqlite3.Connection) -> RunPage:
            sizes = conn.execute(page_sizes_sql(where, "?"), [*args, query.limit + 1]).fetchall()
            cut = cut_page(sizes, query)
            if cut is None:
                return RunPage()
            rows = conn.execute(page_rows_sql(where, "?"), [*args, cut.first_seq, cut.last_seq]).fetchall()
            return to_page([row_to_run(r) for r in rows], cut)

        return await self._read(op)

    async def update_run(
        self, run_id: str, change: RunChange, lease: Lease | None = None, current: Run | None = None
    ) -> Run:
        state = change.state
        # The lifecycle table decides which current states may move to ``state``; checking it
        # in the UPDATE's WHERE makes the common case one statement.
        sources = source_states(state)
        fence, fence_args = fence_sql(lease, "?")
        returning = "*" if current is None else CHANGED_COLUMNS

        def op(conn: sqlite3.Connection) -> Run:
            now = self._clock()
            sets, args = change_sets(change, now, "?")
            marks = ", ".join("?" * len(sources))
            row = conn.execute(
                f"UPDATE runs SET {', '.join(sets)} WHERE run_id = ? AND state IN ({marks}){fence}"
                f" RETURNING {returning}",
                [*args, run_id, *sources, *fence_args],
            ).fetchone()
            if row is None:  # unknown run, lease moved, or an edge the table refuses
                explain_refusal(_select_run(conn, run_id), state, lease)
                raise AssertionError("unreachable: the refused update was explained as allowed")
            run = row_to_run(row) if current is None else changed_run(current, change, now, row)
            event = change_event(change, run.attempts, run.created_at, now)
            if event is not None:
                conn.execute(steps.EVENT_SQL, event_args(run_id, event))
            return run

        return await self._write(op)

    async def begin_step(self, run_id: str, name: str, lease: Lease | None = None) -> int:
        now = self._clock()
        return await self._write(lambda conn: steps.begin_step(conn, run_id, name, now, lease, self._clock))

    async def record_step(self, run_id: str, name: str, result_json: str, lease: Lease | None = None) -> None:
        now = self._clock()
        await self._write(lambda conn: steps.record_step(conn, run_id, name, result_json, now, lease))

    async def fail_step(self, run_id: str, name: str, error: RunError, lease: Lease | None = None) -> None:
        now = self._clock()
        await self._write(lambda conn: steps.fail_step(conn, run_id, name, error, now, lease))

    async def append_event(self, run_id: str, event: HistoryEvent, lease: Lease | None = None) -> None:
        await self._write(lambda conn: steps.append_event(conn, run_id, event, lease))

    async def get_history(self, run_id: str) -> list[HistoryEvent]:
        return await self._read(lambda conn: steps.events_of(conn, run_id))

    async def get_steps(self, run_id: str) -> list[StepRecord]:
        return await self._read(lambda conn: steps.steps_of(conn, run_id))

    async def claim_runs(
        self, owner: str, now: float, lease_s: float, limit: int, skip: Collection[str] = ()
    ) -> list[Run]:
        skipped = json.dumps(sorted(skip))

        def op(conn: sqlite3.Connection) -> list[Run]:
            rows = conn.execute(
                "UPDATE runs SET lease_owner = ?, lease_expires = ?, lease_epoch = lease_epoch + 1"
                " WHERE run_id IN ("
                " SELECT run_id FROM runs WHERE state IN ('PENDING', 'RUNNING')"
                " AND (not_before IS NULL OR not_before <= ?)"
                " AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires < ?)"
                " AND run_id NOT IN (SELECT value FROM json_each(?))"
                " ORDER BY priority DESC, seq LIMIT ?) RETURNING *",
                (owner, now + lease_s, now, owner, now, skipped, limit),
            ).fetchall()
            return sorted((row_to_run(r) for r in rows), key=lambda r: (-r.priority, r.seq))

        return await self._write(op)

    async def renew_leases(self, owner: str, held: Mapping[str, int], until: float) -> set[str]:
        if not held:
            return set()
        pairs = list(held.items())

        def op(conn: sqlite3.Connection) -> set[str]:
            renewed: set[str] = set()
            for i in range(0, len(pairs), _RENEW_CHUNK):
                chunk = pairs[i : i + _RENEW_CHUNK]
                rows = conn.execute(
                    "UPDATE runs SET lease_expires = ? WHERE lease_owner = ?"
                    " AND state IN ('PENDING', 'RUNNING')"
                    f" AND (run_id, lease_epoch) IN (VALUES {', '.join(['(?, ?)'] * len(chunk))})"
                    " RETURNING run_id",
                    (until, owner, *(v for pair in chunk for v in pair)),
                ).fetchall()
                renewed.update(r[0] for r in rows)
            return renewed

        return await self._write(op)
