"""Protobuf <-> domain translation for the workflow servicer (nothing else lives here)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from services.common import (
    DegradationLevel,
    FieldViolation,
    InvalidArgument,
    SecurityLevel,
    degradation_level_pb,
    optional_timestamp,
    set_value,
    struct_to_dict,
)
from services.workflow._catalogue import CatalogueEntry
from services.workflow._events import RunEvent
from services.workflow._history import HistoryEvent
from services.workflow._model import ErrorCategory, Run, RunError, RunQuery, StepRecord
from services.workflow._runs import StartRequest
from services.workflow._states import RunState
from vigil.workflow.v1 import workflow_pb2 as _pb

__all__ = [
    "event_to_proto",
    "history_to_proto",
    "query_from_proto",
    "run_to_proto",
    "start_from_proto",
    "workflow_to_proto",
]

_STATE_TO_PB = {s: _pb.RunState.Value(f"RUN_STATE_{s.value}") for s in RunState}
_STATE_FROM_PB = {v: k for k, v in _STATE_TO_PB.items()}
_CATEGORY_TO_PB = {c: _pb.ErrorCategory.Value(f"ERROR_CATEGORY_{c.name}") for c in ErrorCategory}
_CODE_OF_CATEGORY = {
    ErrorCategory.VALIDATION: "INVALID_ARGUMENT",
    ErrorCategory.AUTH: "PERMISSION_DENIED",
    ErrorCategory.TIMEOUT: "DEADLINE_EXCEEDED",
    ErrorCategory.DEPENDENCY: "UNAVAILABLE",
    ErrorCategory.HANDLER: "UNKNOWN",
    ErrorCategory.CANCELLED: "CANCELLED",
    ErrorCategory.RESOURCE: "RESOURCE_EXHAUSTED",
}
_RETRYABLE_CATEGORIES = {
    ErrorCategory.TIMEOUT,
    ErrorCategory.DEPENDENCY,
    ErrorCategory.HANDLER,
    ErrorCategory.RESOURCE,
}


def _set_ts(field: Timestamp, seconds: float | None) -> None:
    """Set a message's Timestamp field in place (None leaves it unset)."""
    if seconds is not None:
        field.FromNanoseconds(int(seconds * 1e9))


def _dur(seconds: float) -> Duration:
    d = Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def _struct(d: dict[str, Any] | None) -> Struct:
    s = Struct()
    if d:
        s.update(d)
    return s


def error_to_proto(err: RunError) -> _pb.RunError:
    return _pb.RunError(
        category=_CATEGORY_TO_PB[err.category],
        code=_CODE_OF_CATEGORY[err.category],
        message=err.message,
        retryable=err.category in _RETRYABLE_CATEGORIES,
    )


def _step_to_proto(step: StepRecord) -> _pb.StepRecord:
    msg = _pb.StepRecord(name=step.name, completed=step.completed, executions=step.executions)
    if step.completed:
        set_value(msg.result, step.result)
    _set_ts(msg.finished_at, step.finished_at)
    _set_ts(msg.started_at, step.started_at)
    if step.duration_s is not None:
        msg.duration.CopyFrom(_dur(step.duration_s))
    if step.error is not None:
        msg.error.CopyFrom(error_to_proto(step.error))
    return msg


def history_to_proto(event: HistoryEvent) -> _pb.HistoryEvent:
    msg = _pb.HistoryEvent(
        event_id=event.event_id,
        type=_pb.HistoryEventType.Value(f"HISTORY_EVENT_TYPE_{event.type.value}"),
        attempt=event.attempt,
        step=event.step,
        fallback=event.fallback,
    )
    _set_ts(msg.time, event.at)
    if event.duration_s is not None:
        msg.duration.CopyFrom(_dur(event.duration_s))
    if event.retry_delay_s is not None:
        msg.retry_delay.CopyFrom(_dur(event.retry_delay_s))
    if event.error is not None:
        msg.error.CopyFrom(error_to_proto(event.error))
    if event.state is not None:
        msg.state = _STATE_TO_PB[event.state]
    return msg


def run_to_proto(run: Run, steps: list[StepRecord] | None = None) -> _pb.Run:
    msg = _pb.Run(
        run_id=run.run_id,
        workflow=run.workflow,
        state=_STATE_TO_PB[run.state],
        attempts=run.attempts,
        principal=run.principal,
        labels=run.labels,
        idempotency_key=run.idempotency_key or "",
        fallback_applied=run.fallback is not None,
        fallback=run.fallback or "",
        degradation_applied=run.degradation is not None,
        degradation_level=degradation_level_pb(
            DegradationLevel.parse(run.degradation) if run.degradation else None
        ),
        schedule=run.schedule or "",
        audit_id=run.audit_id,
        redactions=run.redactions,
        priority=run.priority,
        steps=[_step_to_proto(s) for s in steps or ()],
        trace_id=run.trace_id,
        retry_of=run.retry_of or "",
        resumed=run.resumed,
    )
    msg.params.Clear()  # present even when empty, as before
    if isinstance(run.params, dict):
        msg.params.update(run.params)
    if run.state is RunState.SUCCEEDED:
        set_value(msg.result, run.result)
    if run.error is not None:
        msg.error.CopyFrom(error_to_proto(run.error))
    _set_ts(msg.created_at, run.created_at)
    _set_ts(msg.updated_at, run.updated_at)
    _set_ts(msg.started_at, run.started_at)
    _set_ts(msg.finished_at, run.finished_at)
    _set_ts(msg.not_before, run.not_before)
    return msg


def event_to_proto(event: RunEvent) -> _pb.WatchRunResponse:
    msg = _pb.WatchRunResponse(
        type=_pb.RunEventType.Value(f"RUN_EVENT_TYPE_{event.type.value}"),
        run=run_to_proto(event.run),
        step=event.step,
    )
    if event.error is not None:
        msg.error.CopyFrom(error_to_proto(event.error))
    return msg


def workflow_to_proto(entry: CatalogueEntry) -> _pb.WorkflowInfo:
    p, stats = entry.policy, entry.stats
    return _pb.WorkflowInfo(
        name=entry.name,
        description=p.description,
        input_schema=_struct(p.input_schema),
        required_level=SecurityLevel.parse(p.required_level).to_proto(),
        timeout=_dur(p.timeout_s),
        retry=_pb.RetryPolicy(
            max_attempts=p.retry.max_attempts,
            initial_backoff=_dur(p.retry.initial_backoff_s),
            max_backoff=_dur(p.retry.max_backoff_s),
            multiplier=p.retry.multiplier,
        ),
        max_concurrency=p.max_concurrency,
        priority=p.priority,
        isolation=_pb.ISOLATION_PROCESS if p.isolation == "process" else _pb.ISOLATION_INLINE,
        fallbacks=[f.label for f in p.fallback],
        breaker_state=_pb.BreakerState.Value(f"BREAKER_STATE_{entry.breaker.value}"),
        stats=_pb.WorkflowStats(
            started=stats.started,
            succeeded=stats.succeeded,
            failed=stats.failed,
            errors_by_category=dict(stats.errors_by_category),
            in_flight=entry.load.in_flight,
            queued=entry.load.queued,
        ),
        prompt_fields=p.prompt_fields,
        path_fields=p.path_fields,
        trajectory_fields=p.trajectory_fields,
    )


def _seconds(when: dt.datetime | None) -> float | None:
    return when.timestamp() if when is not None else None


def start_from_proto(req: _pb.StartRunRequest) -> StartRequest:
    return StartRequest(
        workflow=req.workflow,
        params=struct_to_dict(req.params),  # NaN/Infinity survive here; _check_request refuses them
        params_message=req.params,
        idempotency_key=req.idempotency_key,
        wait=req.wait,
        labels=dict(req.labels),
        not_before=_seconds(optional_timestamp(req, "not_before")),
        priority=req.priority,
    )


def query_from_proto(req: _pb.ListRunsRequest) -> RunQuery:
    unknown = [s for s in req.states if s != _pb.RUN_STATE_UNSPECIFIED and s not in _STATE_FROM_PB]
    if unknown:
        raise InvalidArgument(
            f"states: unknown run state {unknown[0]}",
            [FieldViolation("states", f"unknown run state {unknown[0]}", "UNKNOWN_ENUM")],
        )
    states = frozenset(_STATE_FROM_PB[s] for s in req.states if s in _STATE_FROM_PB)
    return RunQuery(
        workflow=req.workflow or None,
        states=states,
        labels=dict(req.labels),
        created_after=_seconds(optional_timestamp(req, "created_after")),
        created_before=_seconds(optional_timestamp(req, "created_before")),
        limit=req.page_size or 50,
    )
