import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from vigil.healthd.v1 import healthd_pb2 as _healthd_pb2
from vigil.security.v1 import security_pb2 as _security_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATE_UNSPECIFIED: _ClassVar[RunState]
    RUN_STATE_PENDING: _ClassVar[RunState]
    RUN_STATE_RUNNING: _ClassVar[RunState]
    RUN_STATE_SUCCEEDED: _ClassVar[RunState]
    RUN_STATE_FAILED: _ClassVar[RunState]
    RUN_STATE_CANCELLED: _ClassVar[RunState]
    RUN_STATE_TIMED_OUT: _ClassVar[RunState]

class ErrorCategory(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CATEGORY_UNSPECIFIED: _ClassVar[ErrorCategory]
    ERROR_CATEGORY_VALIDATION: _ClassVar[ErrorCategory]
    ERROR_CATEGORY_AUTH: _ClassVar[ErrorCategory]
    ERROR_CATEGORY_TIMEOUT: _ClassVar[ErrorCategory]
    ERROR_CATEGORY_DEPENDENCY: _ClassVar[ErrorCategory]
    ERROR_CATEGORY_HANDLER: _ClassVar[ErrorCategory]
    ERROR_CATEGORY_CANCELLED: _ClassVar[ErrorCategory]
    ERROR_CATEGORY_RESOURCE: _ClassVar[ErrorCategory]

class Isolation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ISOLATION_UNSPECIFIED: _ClassVar[Isolation]
    ISOLATION_INLINE: _ClassVar[Isolation]
    ISOLATION_PROCESS: _ClassVar[Isolation]

class BreakerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BREAKER_STATE_UNSPECIFIED: _ClassVar[BreakerState]
    BREAKER_STATE_CLOSED: _ClassVar[BreakerState]
    BREAKER_STATE_OPEN: _ClassVar[BreakerState]
    BREAKER_STATE_HALF_OPEN: _ClassVar[BreakerState]

class RunEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_EVENT_TYPE_UNSPECIFIED: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_SNAPSHOT: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_STATE_CHANGED: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_STEP_FINISHED: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_ATTEMPT_FAILED: _ClassVar[RunEventType]

class HistoryEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HISTORY_EVENT_TYPE_UNSPECIFIED: _ClassVar[HistoryEventType]
    HISTORY_EVENT_TYPE_RUN_CREATED: _ClassVar[HistoryEventType]
    HISTORY_EVENT_TYPE_ATTEMPT_STARTED: _ClassVar[HistoryEventType]
    HISTORY_EVENT_TYPE_STEP_STARTED: _ClassVar[HistoryEventType]
    HISTORY_EVENT_TYPE_STEP_FINISHED: _ClassVar[HistoryEventType]
    HISTORY_EVENT_TYPE_STEP_FAILED: _ClassVar[HistoryEventType]
    HISTORY_EVENT_TYPE_ATTEMPT_FAILED: _ClassVar[HistoryEventType]
    HISTORY_EVENT_TYPE_RETRY_SCHEDULED: _ClassVar[HistoryEventType]
    HISTORY_EVENT_TYPE_BREAKER_OPEN: _ClassVar[HistoryEventType]
    HISTORY_EVENT_TYPE_FALLBACK_USED: _ClassVar[HistoryEventType]
    HISTORY_EVENT_TYPE_FALLBACK_FAILED: _ClassVar[HistoryEventType]
    HISTORY_EVENT_TYPE_RUN_FINISHED: _ClassVar[HistoryEventType]
RUN_STATE_UNSPECIFIED: RunState
RUN_STATE_PENDING: RunState
RUN_STATE_RUNNING: RunState
RUN_STATE_SUCCEEDED: RunState
RUN_STATE_FAILED: RunState
RUN_STATE_CANCELLED: RunState
RUN_STATE_TIMED_OUT: RunState
ERROR_CATEGORY_UNSPECIFIED: ErrorCategory
ERROR_CATEGORY_VALIDATION: ErrorCategory
ERROR_CATEGORY_AUTH: ErrorCategory
ERROR_CATEGORY_TIMEOUT: ErrorCategory
ERROR_CATEGORY_DEPENDENCY: ErrorCategory
ERROR_CATEGORY_HANDLER: ErrorCategory
ERROR_CATEGORY_CANCELLED: ErrorCategory
ERROR_CATEGORY_RESOURCE: ErrorCategory
ISOLATION_UNSPECIFIED: Isolation
ISOLATION_INLINE: Isolation
ISOLATION_PROCESS: Isolation
BREAKER_STATE_UNSPECIFIED: BreakerState
BREAKER_STATE_CLOSED: BreakerState
BREAKER_STATE_OPEN: BreakerState
BREAKER_STATE_HALF_OPEN: BreakerState
RUN_EVENT_TYPE_UNSPECIFIED: RunEventType
RUN_EVENT_TYPE_SNAPSHOT: RunEventType
RUN_EVENT_TYPE_STATE_CHANGED: RunEventType
RUN_EVENT_TYPE_STEP_FINISHED: RunEventType
RUN_EVENT_TYPE_ATTEMPT_FAILED: RunEventType
HISTORY_EVENT_TYPE_UNSPECIFIED: HistoryEventType
HISTORY_EVENT_TYPE_RUN_CREATED: HistoryEventType
HISTORY_EVENT_TYPE_ATTEMPT_STARTED: HistoryEventType
HISTORY_EVENT_TYPE_STEP_STARTED: HistoryEventType
HISTORY_EVENT_TYPE_STEP_FINISHED: HistoryEventType
HISTORY_EVENT_TYPE_STEP_FAILED: HistoryEventType
HISTORY_EVENT_TYPE_ATTEMPT_FAILED: HistoryEventType
HISTORY_EVENT_TYPE_RETRY_SCHEDULED: HistoryEventType
HISTORY_EVENT_TYPE_BREAKER_OPEN: HistoryEventType
HISTORY_EVENT_TYPE_FALLBACK_USED: HistoryEventType
HISTORY_EVENT_TYPE_FALLBACK_FAILED: HistoryEventType
HISTORY_EVENT_TYPE_RUN_FINISHED: HistoryEventType

class RunError(_message.Message):
    __slots__ = ("category", "code", "message", "retryable")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    category: ErrorCategory
    code: str
    message: str
    retryable: bool
    def __init__(self, category: _Optional[_Union[ErrorCategory, str]] = ..., code: _Optional[str] = ..., message: _Optional[str] = ..., retryable: _Optional[bool] = ...) -> None: ...

class StepRecord(_message.Message):
    __slots__ = ("name", "completed", "result", "finished_at", "executions", "started_at", "duration", "error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    completed: bool
    result: _struct_pb2.Value
    finished_at: _timestamp_pb2.Timestamp
    executions: int
    started_at: _timestamp_pb2.Timestamp
    duration: _duration_pb2.Duration
    error: RunError
    def __init__(self, name: _Optional[str] = ..., completed: _Optional[bool] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., executions: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., error: _Optional[_Union[RunError, _Mapping]] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("run_id", "workflow", "state", "params", "result", "error", "attempts", "steps", "created_at", "started_at", "finished_at", "principal", "labels", "idempotency_key", "fallback_applied", "fallback", "degradation_applied", "degradation_level", "not_before", "schedule", "audit_id", "redactions", "priority", "updated_at", "trace_id", "retry_of", "resumed")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class RedactionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_APPLIED_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    DEGRADATION_APPLIED_FIELD_NUMBER: _ClassVar[int]
    DEGRADATION_LEVEL_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    REDACTIONS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    RETRY_OF_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    workflow: str
    state: RunState
    params: _struct_pb2.Struct
    result: _struct_pb2.Value
    error: RunError
    attempts: int
    steps: _containers.RepeatedCompositeFieldContainer[StepRecord]
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    principal: str
    labels: _containers.ScalarMap[str, str]
    idempotency_key: str
    fallback_applied: bool
    fallback: str
    degradation_applied: bool
    degradation_level: _healthd_pb2.DegradationLevel
    not_before: _timestamp_pb2.Timestamp
    schedule: str
    audit_id: str
    redactions: _containers.ScalarMap[str, int]
    priority: int
    updated_at: _timestamp_pb2.Timestamp
    trace_id: str
    retry_of: str
    resumed: bool
    def __init__(self, run_id: _Optional[str] = ..., workflow: _Optional[str] = ..., state: _Optional[_Union[RunState, str]] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., error: _Optional[_Union[RunError, _Mapping]] = ..., attempts: _Optional[int] = ..., steps: _Optional[_Iterable[_Union[StepRecord, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., principal: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., idempotency_key: _Optional[str] = ..., fallback_applied: _Optional[bool] = ..., fallback: _Optional[str] = ..., degradation_applied: _Optional[bool] = ..., degradation_level: _Optional[_Union[_healthd_pb2.DegradationLevel, str]] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., schedule: _Optional[str] = ..., audit_id: _Optional[str] = ..., redactions: _Optional[_Mapping[str, int]] = ..., priority: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trace_id: _Optional[str] = ..., retry_of: _Optional[str] = ..., resumed: _Optional[bool] = ...) -> None: ...

class RetryPolicy(_message.Message):
    __slots__ = ("max_attempts", "initial_backoff", "max_backoff", "multiplier")
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    MAX_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    max_attempts: int
    initial_backoff: _duration_pb2.Duration
    max_backoff: _duration_pb2.Duration
    multiplier: float
    def __init__(self, max_attempts: _Optional[int] = ..., initial_backoff: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_backoff: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., multiplier: _Optional[float] = ...) -> None: ...

class WorkflowStats(_message.Message):
    __slots__ = ("started", "succeeded", "failed", "errors_by_category", "in_flight", "queued")
    class ErrorsByCategoryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    STARTED_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_BY_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    started: int
    succeeded: int
    failed: int
    errors_by_category: _containers.ScalarMap[str, int]
    in_flight: int
    queued: int
    def __init__(self, started: _Optional[int] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., errors_by_category: _Optional[_Mapping[str, int]] = ..., in_flight: _Optional[int] = ..., queued: _Optional[int] = ...) -> None: ...

class WorkflowInfo(_message.Message):
    __slots__ = ("name", "description", "input_schema", "required_level", "timeout", "retry", "max_concurrency", "priority", "isolation", "fallbacks", "breaker_state", "stats", "prompt_fields", "path_fields", "trajectory_fields")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_LEVEL_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    BREAKER_STATE_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELDS_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELDS_FIELD_NUMBER: _ClassVar[int]
    TRAJECTORY_FIELDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    input_schema: _struct_pb2.Struct
    required_level: _security_pb2.SecurityLevel
    timeout: _duration_pb2.Duration
    retry: RetryPolicy
    max_concurrency: int
    priority: int
    isolation: Isolation
    fallbacks: _containers.RepeatedScalarFieldContainer[str]
    breaker_state: BreakerState
    stats: WorkflowStats
    prompt_fields: _containers.RepeatedScalarFieldContainer[str]
    path_fields: _containers.RepeatedScalarFieldContainer[str]
    trajectory_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., input_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., required_level: _Optional[_Union[_security_pb2.SecurityLevel, str]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., retry: _Optional[_Union[RetryPolicy, _Mapping]] = ..., max_concurrency: _Optional[int] = ..., priority: _Optional[int] = ..., isolation: _Optional[_Union[Isolation, str]] = ..., fallbacks: _Optional[_Iterable[str]] = ..., breaker_state: _Optional[_Union[BreakerState, str]] = ..., stats: _Optional[_Union[WorkflowStats, _Mapping]] = ..., prompt_fields: _Optional[_Iterable[str]] = ..., path_fields: _Optional[_Iterable[str]] = ..., trajectory_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class ListWorkflowsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWorkflowsResponse(_message.Message):
    __slots__ = ("workflows",)
    WORKFLOWS_FIELD_NUMBER: _ClassVar[int]
    workflows: _containers.RepeatedCompositeFieldContainer[WorkflowInfo]
    def __init__(self, workflows: _Optional[_Iterable[_Union[WorkflowInfo, _Mapping]]] = ...) -> None: ...

class StartRunRequest(_message.Message):
    __slots__ = ("workflow", "params", "idempotency_key", "wait", "labels", "not_before", "priority")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    workflow: str
    params: _struct_pb2.Struct
    idempotency_key: str
    wait: bool
    labels: _containers.ScalarMap[str, str]
    not_before: _timestamp_pb2.Timestamp
    priority: int
    def __init__(self, workflow: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., wait: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., priority: _Optional[int] = ...) -> None: ...

class StartRunResponse(_message.Message):
    __slots__ = ("run", "created")
    RUN_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    run: Run
    created: bool
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class GetRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("workflow", "states", "labels", "created_after", "created_before", "page_size", "page_token")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    workflow: str
    states: _containers.RepeatedScalarFieldContainer[RunState]
    labels: _containers.ScalarMap[str, str]
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, workflow: _Optional[str] = ..., states: _Optional[_Iterable[_Union[RunState, str]]] = ..., labels: _Optional[_Mapping[str, str]] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class WatchRunResponse(_message.Message):
    __slots__ = ("type", "run", "step", "error")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    type: RunEventType
    run: Run
    step: str
    error: RunError
    def __init__(self, type: _Optional[_Union[RunEventType, str]] = ..., run: _Optional[_Union[Run, _Mapping]] = ..., step: _Optional[str] = ..., error: _Optional[_Union[RunError, _Mapping]] = ...) -> None: ...

class CancelRunRequest(_message.Message):
    __slots__ = ("run_id", "reason")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    reason: str
    def __init__(self, run_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class HistoryEvent(_message.Message):
    __slots__ = ("event_id", "time", "type", "attempt", "step", "duration", "error", "fallback", "state", "retry_delay")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RETRY_DELAY_FIELD_NUMBER: _ClassVar[int]
    event_id: int
    time: _timestamp_pb2.Timestamp
    type: HistoryEventType
    attempt: int
    step: str
    duration: _duration_pb2.Duration
    error: RunError
    fallback: str
    state: RunState
    retry_delay: _duration_pb2.Duration
    def __init__(self, event_id: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., type: _Optional[_Union[HistoryEventType, str]] = ..., attempt: _Optional[int] = ..., step: _Optional[str] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., error: _Optional[_Union[RunError, _Mapping]] = ..., fallback: _Optional[str] = ..., state: _Optional[_Union[RunState, str]] = ..., retry_delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class GetRunHistoryRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class GetRunHistoryResponse(_message.Message):
    __slots__ = ("run", "events")
    RUN_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    run: Run
    events: _containers.RepeatedCompositeFieldContainer[HistoryEvent]
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ..., events: _Optional[_Iterable[_Union[HistoryEvent, _Mapping]]] = ...) -> None: ...

class RetryRunRequest(_message.Message):
    __slots__ = ("run_id", "resume", "idempotency_key", "wait")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    resume: bool
    idempotency_key: str
    wait: bool
    def __init__(self, run_id: _Optional[str] = ..., resume: _Optional[bool] = ..., idempotency_key: _Optional[str] = ..., wait: _Optional[bool] = ...) -> None: ...

class RetryRunResponse(_message.Message):
    __slots__ = ("run", "created")
    RUN_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    run: Run
    created: bool
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...
