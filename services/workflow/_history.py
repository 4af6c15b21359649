"""A run's history: what happened to it, in order (GetRunHistory, ``vigil runs history``).

The stores append these events in the same transaction as the write they describe where one
exists (created, attempt started, step started/finished, finished), so history and run never
disagree; the executor appends the rest (failed attempts and steps, retries, breaker
rejections, fallbacks). Events are facts already made: never updated, never deleted.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from services.workflow._model import ErrorCategory, RunChange, RunError, canonical_json
from services.workflow._states import RunState

__all__ = [
    "HistoryEvent",
    "HistoryType",
    "change_event",
    "change_event_type",
    "creation_events",
    "error_json",
    "event_from_row",
    "event_to_row",
]


class HistoryType(enum.Enum):
    RUN_CREATED = "RUN_CREATED"
    ATTEMPT_STARTED = "ATTEMPT_STARTED"
    STEP_STARTED = "STEP_STARTED"
    STEP_FINISHED = "STEP_FINISHED"
    STEP_FAILED = "STEP_FAILED"
    ATTEMPT_FAILED = "ATTEMPT_FAILED"
    RETRY_SCHEDULED = "RETRY_SCHEDULED"
    BREAKER_OPEN = "BREAKER_OPEN"
    FALLBACK_USED = "FALLBACK_USED"
    FALLBACK_FAILED = "FALLBACK_FAILED"
    RUN_FINISHED = "RUN_FINISHED"


@dataclass(frozen=True)
class HistoryEvent:
    """One event; which optional fields are set depends on ``type`` (see the proto)."""

    type: HistoryType
    at: float = 0.0
    event_id: int = 0
    """1-based order within the run, assigned by the store."""
    attempt: int = 0
    step: str = ""
    duration_s: float | None = None
    error: RunError | None = None
    fallback: str = ""
    state: RunState | None = None
    retry_delay_s: float | None = None


def event_to_row(event: HistoryEvent) -> tuple[str, str]:
    """(type, data JSON) columns of ``event``; ``at`` and the id are columns of their own."""
    data: dict[str, Any] = {}
    if event.attempt:
        data["attempt"] = event.attempt
    if event.step:
        data["step"] = event.step
    if event.duration_s is not None:
        data["duration_s"] = event.duration_s
    if event.error is not None:
        data["error"] = _error_data(event.error)
    if event.fallback:
        data["fallback"] = event.fallback
    if event.state is not None:
        data["state"] = event.state.value
    if event.retry_delay_s is not None:
        data["retry_delay_s"] = event.retry_delay_s
    return event.type.value, canonical_json(data)


def _error_data(error: RunError) -> list[str]:
    return [error.category.value, error.message]


def error_json(error: RunError | None) -> str | None:
    """An error as the ``data.error`` JSON of an event (None without one); for SQL-built events."""
    return canonical_json(_error_data(error)) if error is not None else None


def event_from_row(event_id: int, at: float, kind: str, data_json: str) -> HistoryEvent:
    data = json.loads(data_json)
    error = data.get("error")
    return HistoryEvent(
        type=HistoryType(kind),
        at=at,
        event_id=event_id,
        attempt=data.get("attempt", 0),
        step=data.get("step", ""),
        duration_s=data.get("duration_s"),
        error=RunError(ErrorCategory(error[0]), error[1]) if error else None,
        fallback=data.get("fallback", ""),
        state=RunState(data["state"]) if "state" in data else None,
        retry_delay_s=data.get("retry_delay_s"),
    )


def change_event_type(change: RunChange) -> HistoryType | None:
    """Which event a state change records: a new attempt, the end of the run, or none."""
    if change.state is RunState.RUNNING and change.attempt:
        return HistoryType.ATTEMPT_STARTED
    return HistoryType.RUN_FINISHED if change.state.terminal else None


def change_event(change: RunChange, attempts: int, created_at: float, now: float) -> HistoryEvent | None:
    """The event a state change records, if any: a new attempt, or the end of the run.

    Args:
        attempts: The run's attempt count after the change.
        created_at: When the run was created (a finished run's duration counts from then).
    """
    kind = change_event_type(change)
    if kind is HistoryType.ATTEMPT_STARTED:
        return HistoryEvent(kind, at=now, attempt=attempts)
    if kind is HistoryType.RUN_FINISHED:
        return HistoryEvent(
            kind,
            at=now,
            attempt=attempts,
            state=change.state,
            error=change.error if change.state is not RunState.SUCCEEDED else None,
            fallback=change.fallback or "",
            duration_s=max(0.0, now - created_at),
        )
    return None


def creation_events(created_at: float, started: bool) -> list[HistoryEvent]:
    """The events a new run records with its creation: RUN_CREATED, and ATTEMPT_STARTED
    (attempt 1) when it is created with its first attempt started (`NewRun.started`)."""
    events = [HistoryEvent(HistoryType.RUN_CREATED, at=created_at)]
    if started:
        events.append(HistoryEvent(HistoryType.ATTEMPT_STARTED, at=created_at, attempt=1))
    return events
