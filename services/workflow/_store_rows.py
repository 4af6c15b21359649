"""What the SQL run stores (SQLite, PostgreSQL) do alike: rows to domain objects, the
INSERT of a new run, the SET list of a state change and the filters of a run query.

Each store keeps only its dialect: the placeholder (``?`` or ``%s``), how labels are
stored (JSON text in SQLite, JSONB in PostgreSQL) and how it runs statements.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from services.common import AlreadyExists
from services.workflow._history import HistoryEvent, event_to_row
from services.workflow._model import (
    ErrorCategory,
    Lease,
    LeaseLost,
    NewRun,
    Run,
    RunChange,
    RunError,
    RunPage,
    RunQuery,
    StepRecord,
    canonical_json,
)
from services.workflow._states import RunState, allowed_sources, transition

__all__ = [
    "CHANGED_COLUMNS",
    "INSERT_COLUMNS",
    "PageCut",
    "change_sets",
    "changed_run",
    "created_run",
    "cut_page",
    "event_args",
    "event_insert",
    "existing_run",
    "explain_refusal",
    "fence_sql",
    "insert_values",
    "lease_lost",
    "page_rows_sql",
    "page_sizes_sql",
    "query_filters",
    "row_to_run",
    "row_to_step",
    "source_states",
    "to_page",
]

Row = Mapping[str, Any]


def existing_run(row: Row, new: NewRun) -> tuple[Run, bool]:
    """The run an idempotent create found (``row``, same principal and key) as
    `RunStore.create_run` answers it: (run, False) for the same request.

    Raises:
        AlreadyExists: the key was used for a different request (the message names the run,
            never the key, which is stored only as a keyed hash).
    """
    if row["request_hash"] not in (new.request_hash, new.legacy_request_hash or new.request_hash):
        raise AlreadyExists(f"idempotency key was used for a different request (run {row['run_id']})")
    return row_to_run(row), False


# Columns of a new run, in the order of `insert_values`.
INSERT_COLUMNS = (
    "run_id, workflow, state, params, principal, priority, idempotency_key, request_hash, created_at,"
    " updated_at, not_before, deadline, degradation, labels, schedule, audit_id, redactions,"
    " lease_owner, lease_expires, trace_id, retry_of, resumed, lease_epoch, attempts, started_at"
)
INSERT_COUNT = INSERT_COLUMNS.count(",") + 1
_INSERTED = tuple(c.strip() for c in INSERT_COLUMNS.split(","))
# What `row_to_run` reads that a create does not insert (NULL in a new row) besides ``seq``.
_NOT_INSERTED = dict.fromkeys(("result", "error_category", "error_message", "fallback", "finished_at"))


def _json(value: Any) -> Any:
    """A JSON column: text in SQLite (and for text columns in PostgreSQL), decoded by JSONB."""
    return json.loads(value) if isinstance(value, str) else value


def row_to_run(row: Row) -> Run:
    """A ``runs`` row (any mapping of column -> value) as a `Run`."""
    error = None
    if row["error_category"] is not None:
        error = RunError(ErrorCategory(row["error_category"]), row["error_message"] or "")
    return Run(
        run_id=row["run_id"],
        workflow=row["workflow"],
        state=RunState(row["state"]),
        params=json.loads(row["params"]),
        principal=row["principal"],
        priority=row["priority"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        seq=row["seq"],
        idempotency_key=row["idempotency_key"],
        request_hash=row["request_hash"],
        not_before=row["not_before"],
        deadline=row["deadline"],
        attempts=row["attempts"],
        result=json.loads(row["result"]) if row["result"] is not None else None,
        stored_chars=len(row["params"]) + len(row["result"] or ""),
        error=error,
        fallback=row["fallback"],
        degradation=row["degradation"],
        labels=_json(row["labels"]),
        schedule=row["schedule"],
        audit_id=row["audit_id"],
        redactions=json.loads(row["redactions"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        lease_owner=row["lease_owner"],
        lease_expires=row["lease_expires"],
        trace_id=row["trace_id"],
        retry_of=row["retry_of"],
        resumed=bool(row["resumed"]),
        lease_epoch=row["lease_epoch"],
    )


def row_to_step(row: Row) -> StepRecord:
    """A ``steps`` row as a `StepRecord` (``completed`` is 0/1 in SQLite, a bool in PostgreSQL)."""
    return StepRecord(
        name=row["name"],
        completed=bool(row["completed"]),
        result=json.loads(row["result"]) if row["result"] is not None else None,
        stored_chars=len(row["result"] or ""),
        finished_at=row["finished_at"],
        executions=row["executions"],
        started_at=row["started_at"],
        duration_s=row["duration_s"],
        error=RunError(ErrorCategory(row["error_category"]), row["error_message"] or "")
        if row["error_category"] is not None
        else None,
    )


def insert_values(new: NewRun, labels: Any) -> tuple[Any, ...]:
    """The values of `INSERT_COLUMNS` for ``new`` (PENDING, or RUNNING with its first attempt
    counted when ``new.started``); ``labels`` as the store keeps them."""
    return (
        new.run_id,
        new.workflow,
        (RunState.RUNNING if new.started else RunState.PENDING).value,
        canonical_json(new.params),
        new.principal,
        new.priority,
        new.idempotency_key,
        new.request_hash,
        new.created_at,
        new.created_at,
        new.not_before,
        new.deadline,
        new.degradation,
        labels,
        new.schedule,
        new.audit_id,
        canonical_json(new.redactions),
        new.lease_owner,
        new.lease_expires,
        new.trace_id,
        new.retry_of,
        int(new.resume),
        1 if new.lease_owner is not None else 0,  # created leased: the first claim
        1 if new.started else 0,
        new.created_at if new.started else None,
    )


def created_run(values: tuple[Any, ...], seq: int) -> Run:
    """The run a create stored with ``values`` (`insert_values`) under ``seq``, read by
    `row_to_run` from the row it wrote instead of from the database: the writer knows every
    column (those it does not insert are NULL in a new row)."""
    return row_to_run({**_NOT_INSERTED, **dict(zip(_INSERTED, values, strict=True)), "seq": seq})


def event_insert(mark: str) -> str:
    """INSERT of one history event (run_id, at, type, data) with placeholder ``mark``."""
    return f"INSERT INTO run_events (run_id, at, type, data) VALUES ({mark}, {mark}, {mark}, {mark})"


def event_args(run_id: str, event: HistoryEvent) -> tuple[Any, ...]:
    return (run_id, event.at, *event_to_row(event))


def source_states(target: RunState) -> list[str]:
    """The states from which the lifecycle table allows ``target``: the compare half of an
    update's compare-and-set (its WHERE), sorted so the statement text is stable."""
    return sorted(s.value for s in allowed_sources(target))


def fence_sql(lease: Lease | None, mark: str) -> tuple[str, list[Any]]:
    """The condition (`` AND ...``, or empty when unfenced) that a write of a run only lands
    while ``lease`` is still the run's lease, and its arguments."""
    if lease is None:
        return "", []
    return f" AND lease_owner = {mark} AND lease_epoch = {mark}", [lease.owner, lease.epoch]


def lease_lost(run_id: str, lease: Lease) -> LeaseLost:
    return LeaseLost(f"run {run_id}: lease epoch {lease.epoch} of {lease.owner!r} has moved; write refused")


def explain_refusal(current: Run, target: RunState, lease: Lease | None) -> None:
    """Why a fenced compare-and-set update of ``current`` to ``target`` matched no row.

    Raises LeaseLost (the lease moved: checked first, the writer must stop) or
    InvalidTransition; returns when neither holds (the run changed between the update and
    this read, so the caller may try again). NotFound comes from reading ``current``.
    """
    if lease is not None and current.lease != lease:
        raise lease_lost(current.run_id, lease)
    transition(current.state, target)


def change_sets(change: RunChange, now: float, mark: str) -> tuple[list[str], list[Any]]:
    """The SET assignments of ``change`` at ``now`` and their arguments (placeholder ``mark``).

    RUNNING stamps ``started_at`` once; a terminal state stamps ``finished_at`` and releases
    the lease; ``attempt`` counts a new attempt in the same write.
    """
    state = change.state
    sets = [f"state = {mark}", f"updated_at = {mark}"]
    args: list[Any] = [state.value, now]
    if state is RunState.RUNNING:
        sets.append(f"started_at = COALESCE(started_at, {mark})")
        args.append(now)
    if change.has_result:
        sets.append(f"result = {mark}")
        args.append(change.result_json)
    if change.error is not None:
        sets += [f"error_category = {mark}", f"error_message = {mark}"]
        args += [change.error.category.value, change.error.message]
    if change.fallback is not None:
        sets.append(f"fallback = {mark}")
        args.append(change.fallback)
    if change.attempt:
        sets.append("attempts = attempts + 1")
    if state.terminal:
        sets += ["lease_owner = NULL", "lease_expires = NULL", f"finished_at = {mark}"]
        args.append(now)
    elif change.lease_owner is not None:
        sets += [f"lease_owner = {mark}", f"lease_expires = {mark}"]
        args += [change.lease_owner, change.lease_expires]
    return sets, args


# What an update returns when the writer knows the run: the columns it may not know (the
# statement computes them), so the new `Run` is derived without reading the row back.
CHANGED_COLUMNS = "attempts, started_at, lease_owner, lease_expires, lease_epoch"


def changed_run(current: Run, change: RunChange, now: float, row: Row) -> Run:
    """``current`` after ``change`` was written at ``now`` (`change_sets`), ``row`` holding the
    `CHANGED_COLUMNS` the write returned.

    Exact as long as nobody else changed ``current``'s other columns meanwhile, which the
    caller's lease guarantees: only the lease holder writes a run it executes (a fenced
    compare-and-set), and the columns set at creation never change.
    """
    state = change.state
    return dataclasses.replace(
        current,
        state=state,
        updated_at=now,
        attempts=row["attempts"],
        started_at=row["started_at"],
        lease_owner=row["lease_owner"],
        lease_expires=row["lease_expires"],
        lease_epoch=row["lease_epoch"],
        result=change.result if change.has_result else current.result,
        error=change.error if change.error is not None else current.error,
        fallback=change.fallback if change.fallback is not None else current.fallback,
        finished_at=now if state.terminal else current.finished_at,
        stored_chars=current.stored_chars + (len(change.result_json) if change.has_result else 0),
    )


def query_filters(
    query: RunQuery,
    mark: str,
    labels: Callable[[Mapping[str, str]], tuple[list[str], list[Any]]],
    states: Callable[[list[str]], tuple[str, list[Any]]],
) -> tuple[list[str], list[Any]]:
    """The WHERE conditions of ``query`` and their arguments.

    Args:
        mark: The dialect's placeholder.
        labels: Conditions for the label filter (each dialect matches JSON differently).
        states: The condition for a set of state names, with its arguments.
    """
    where: list[str] = []
    args: list[Any] = []
    if query.workflow is not None:
        where.append(f"workflow = {mark}")
        args.append(query.workflow)
    if query.principal is not None:
        where.append(f"principal = {mark}")
        args.append(query.principal)
    if query.labels:
        conds, values = labels(query.labels)
        where += conds
        args += values
    if query.created_after is not None:
        where.append(f"created_at >= {mark}")
        args.append(query.created_after)
    if query.created_before is not None:
        where.append(f"created_at < {mark}")
        args.append(query.created_before)
    if query.states:
        cond, values = states(sorted(s.value for s in query.states))
        where.append(cond)
        args += values
    if query.before_seq is not None:
        where.append(f"seq < {mark}")
        args.append(query.before_seq)
    return where, args


# What reading a run costs, before it is read: its params and result as stored (JSON text).
_STORED_CHARS = "length(params) + coalesce(length(result), 0)"


def _where(where: list[str]) -> str:
    return " WHERE " + " AND ".join(where) if where else ""


def page_sizes_sql(where: list[str], mark: str) -> str:
    """First read of a page: the ``seq`` and stored size of each candidate run, newest first,
    up to a limit (``limit + 1``: one extra row tells whether another page exists). Only
    these two columns leave the database, so a page of huge runs costs nothing to size."""
    sizes = f"SELECT seq, {_STORED_CHARS} AS stored_chars FROM runs{_where(where)}"
    return f"{sizes} ORDER BY seq DESC LIMIT {mark}"


def page_rows_sql(where: list[str], mark: str) -> str:
    """Second read of a page: the runs ``where`` selects between two ``seq`` (newest, oldest)."""
    return f"SELECT * FROM runs{_where([*where, f'seq <= {mark}', f'seq >= {mark}'])} ORDER BY seq DESC"


@dataclasses.dataclass(frozen=True)
class PageCut:
    """Which candidates of `page_sizes_sql` a page reads: the newest ``count``, between
    ``first_seq`` and ``last_seq``; ``next_seq`` continues after them when more match."""

    count: int
    first_seq: int
    last_seq: int
    next_seq: int | None


def cut_page(sizes: Sequence[tuple[int, int]], query: RunQuery) -> PageCut | None:
    """The runs to read of the candidates ``sizes`` ((seq, stored size), newest first, at most
    ``query.limit + 1``): the newest ``query.limit``, fewer when their stored size passes
    ``query.max_chars`` (always at least one). None when nothing matches.

    Invariant: a page never reads runs that it cannot return, so a page of 1,000 runs
    with 256 KiB of params each costs what its message can hold, not 256 MB of parsing.
    """
    if not sizes:
        return None
    count, total = 0, 0
    for _, size in sizes[: query.limit]:
        if count and query.max_chars is not None and total + size > query.max_chars:
            break
        count, total = count + 1, total + size
    more = count < len(sizes)
    last = sizes[count - 1][0]
    return PageCut(count, sizes[0][0], last, last if more else None)


def to_page(runs: list[Run], cut: PageCut) -> RunPage:
    """The page of the runs read for ``cut`` (`page_rows_sql`)."""
    return RunPage(runs=runs, next_seq=cut.next_seq)
