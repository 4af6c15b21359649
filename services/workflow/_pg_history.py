"""PostgreSQL: a run-store write and its history event as one statement.

The PostgreSQL store keeps every operation one statement in autocommit mode (one round trip,
one commit). A write that records a history event is therefore wrapped as a data-modifying CTE
whose second part inserts the event built from the row the write returned, so the event exists
exactly when the write happened, with no BEGIN/COMMIT. Each ``*_data`` below builds in SQL the
same ``data`` JSON `services.workflow._history.event_to_row` writes (read back by
`event_from_row`; null fields are left out).
"""

from __future__ import annotations

from services.workflow._history import HistoryType

__all__ = ["ATTEMPT_DATA", "FINISHED_DATA", "STEP_DATA", "STEP_FAILED_DATA", "with_event", "with_events"]

# Columns of the written row are ``w.*``; ``%s`` placeholders follow the write's own.
ATTEMPT_DATA = "jsonb_build_object('attempt', w.attempts)::text"
FINISHED_DATA = (
    "jsonb_strip_nulls(jsonb_build_object('attempt', w.attempts, 'state', w.state,"
    " 'error', %s::jsonb, 'fallback', %s::text,"
    " 'duration_s', GREATEST(0, w.finished_at - w.created_at)))::text"
)
"""Args: the error (`error_json`) or None, the fallback or None."""
STEP_DATA = (
    "jsonb_strip_nulls(jsonb_build_object('step', w.name, 'attempt', w.executions,"
    " 'duration_s', w.duration_s))::text"
)
STEP_FAILED_DATA = (
    "jsonb_strip_nulls(jsonb_build_object('step', w.name, 'attempt', w.executions,"
    " 'duration_s', w.duration_s, 'error', %s::jsonb))::text"
)
"""Args: the error (`error_json`)."""


def with_event(write: str, kind: HistoryType, data_sql: str = "'{}'", extra: str = "") -> str:
    """``write`` (INSERT/UPDATE ... RETURNING the row, ``run_id`` included) plus the insert of a
    ``kind`` event, as one statement that returns what ``write`` returned.

    Placeholders, in order: ``write``'s, then the event time, then ``data_sql``'s. ``extra`` is
    a further ``, name AS (...)`` CTE (its placeholders come last).
    """
    return (
        f"WITH w AS ({write}), e AS (INSERT INTO run_events (run_id, at, type, data)"
        f" SELECT w.run_id, %s, '{kind.value}', {data_sql} FROM w){extra} SELECT * FROM w"
    )


def with_events(write: str, count: int, extra: str = "") -> str:
    """``write`` plus the insert of ``count`` events whose type and data come as parameters,
    as one statement that returns what ``write`` returned; the events get their ids (their
    order in the history) in the order given.

    Placeholders, in order: ``write``'s, the events' time, then (type, data JSON) per event,
    then ``extra``'s (a further ``, name AS (...)`` CTE).
    """
    values = ", ".join(f"({i}, %s, %s)" for i in range(count))
    return (
        f"WITH w AS ({write}), e AS (INSERT INTO run_events (run_id, at, type, data)"
        f" SELECT w.run_id, %s, v.type, v.data FROM w, (VALUES {values}) AS v(ord, type, data)"
        f" ORDER BY v.ord){extra} SELECT * FROM w"
    )
