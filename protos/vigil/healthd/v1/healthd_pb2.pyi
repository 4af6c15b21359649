import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ComponentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPONENT_STATUS_UNSPECIFIED: _ClassVar[ComponentStatus]
    COMPONENT_STATUS_SERVING: _ClassVar[ComponentStatus]
    COMPONENT_STATUS_NOT_SERVING: _ClassVar[ComponentStatus]
    COMPONENT_STATUS_UNKNOWN: _ClassVar[ComponentStatus]

class SystemStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYSTEM_STATUS_UNSPECIFIED: _ClassVar[SystemStatus]
    SYSTEM_STATUS_HEALTHY: _ClassVar[SystemStatus]
    SYSTEM_STATUS_DEGRADED: _ClassVar[SystemStatus]
    SYSTEM_STATUS_UNHEALTHY: _ClassVar[SystemStatus]

class DegradationLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEGRADATION_LEVEL_UNSPECIFIED: _ClassVar[DegradationLevel]
    DEGRADATION_LEVEL_NORMAL: _ClassVar[DegradationLevel]
    DEGRADATION_LEVEL_DEGRADED: _ClassVar[DegradationLevel]
    DEGRADATION_LEVEL_RESTRICTED: _ClassVar[DegradationLevel]
    DEGRADATION_LEVEL_READ_ONLY: _ClassVar[DegradationLevel]
    DEGRADATION_LEVEL_OFFLINE: _ClassVar[DegradationLevel]

class HealingState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALING_STATE_UNSPECIFIED: _ClassVar[HealingState]
    HEALING_STATE_HEALTHY: _ClassVar[HealingState]
    HEALING_STATE_SUSPECT: _ClassVar[HealingState]
    HEALING_STATE_HEALING: _ClassVar[HealingState]
    HEALING_STATE_BACKOFF: _ClassVar[HealingState]
    HEALING_STATE_FATAL: _ClassVar[HealingState]
    HEALING_STATE_MAINTENANCE: _ClassVar[HealingState]
    HEALING_STATE_STOPPED: _ClassVar[HealingState]

class ControlAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTROL_ACTION_UNSPECIFIED: _ClassVar[ControlAction]
    CONTROL_ACTION_START: _ClassVar[ControlAction]
    CONTROL_ACTION_STOP: _ClassVar[ControlAction]
    CONTROL_ACTION_RESTART: _ClassVar[ControlAction]

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_COMPONENT_STATUS_CHANGED: _ClassVar[EventType]
    EVENT_TYPE_SYSTEM_STATUS_CHANGED: _ClassVar[EventType]
    EVENT_TYPE_HEALING_STATE_CHANGED: _ClassVar[EventType]
    EVENT_TYPE_HEAL_STARTED: _ClassVar[EventType]
    EVENT_TYPE_HEAL_SUCCEEDED: _ClassVar[EventType]
    EVENT_TYPE_HEAL_FAILED: _ClassVar[EventType]
    EVENT_TYPE_ESCALATED: _ClassVar[EventType]
    EVENT_TYPE_MAINTENANCE_CHANGED: _ClassVar[EventType]
    EVENT_TYPE_PROCESS_STARTED: _ClassVar[EventType]
    EVENT_TYPE_PROCESS_EXITED: _ClassVar[EventType]
    EVENT_TYPE_ALERT_FIRING: _ClassVar[EventType]
    EVENT_TYPE_ALERT_RESOLVED: _ClassVar[EventType]
COMPONENT_STATUS_UNSPECIFIED: ComponentStatus
COMPONENT_STATUS_SERVING: ComponentStatus
COMPONENT_STATUS_NOT_SERVING: ComponentStatus
COMPONENT_STATUS_UNKNOWN: ComponentStatus
SYSTEM_STATUS_UNSPECIFIED: SystemStatus
SYSTEM_STATUS_HEALTHY: SystemStatus
SYSTEM_STATUS_DEGRADED: SystemStatus
SYSTEM_STATUS_UNHEALTHY: SystemStatus
DEGRADATION_LEVEL_UNSPECIFIED: DegradationLevel
DEGRADATION_LEVEL_NORMAL: DegradationLevel
DEGRADATION_LEVEL_DEGRADED: DegradationLevel
DEGRADATION_LEVEL_RESTRICTED: DegradationLevel
DEGRADATION_LEVEL_READ_ONLY: DegradationLevel
DEGRADATION_LEVEL_OFFLINE: DegradationLevel
HEALING_STATE_UNSPECIFIED: HealingState
HEALING_STATE_HEALTHY: HealingState
HEALING_STATE_SUSPECT: HealingState
HEALING_STATE_HEALING: HealingState
HEALING_STATE_BACKOFF: HealingState
HEALING_STATE_FATAL: HealingState
HEALING_STATE_MAINTENANCE: HealingState
HEALING_STATE_STOPPED: HealingState
CONTROL_ACTION_UNSPECIFIED: ControlAction
CONTROL_ACTION_START: ControlAction
CONTROL_ACTION_STOP: ControlAction
CONTROL_ACTION_RESTART: ControlAction
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_COMPONENT_STATUS_CHANGED: EventType
EVENT_TYPE_SYSTEM_STATUS_CHANGED: EventType
EVENT_TYPE_HEALING_STATE_CHANGED: EventType
EVENT_TYPE_HEAL_STARTED: EventType
EVENT_TYPE_HEAL_SUCCEEDED: EventType
EVENT_TYPE_HEAL_FAILED: EventType
EVENT_TYPE_ESCALATED: EventType
EVENT_TYPE_MAINTENANCE_CHANGED: EventType
EVENT_TYPE_PROCESS_STARTED: EventType
EVENT_TYPE_PROCESS_EXITED: EventType
EVENT_TYPE_ALERT_FIRING: EventType
EVENT_TYPE_ALERT_RESOLVED: EventType

class CheckResult(_message.Message):
    __slots__ = ("name", "kind", "status", "latency", "message", "time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    status: ComponentStatus
    latency: _duration_pb2.Duration
    message: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., status: _Optional[_Union[ComponentStatus, str]] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., message: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ComponentHealth(_message.Message):
    __slots__ = ("name", "status", "critical", "depends_on", "blocked_by", "last_check_time", "last_latency", "consecutive_failures", "consecutive_successes", "healing_state", "heal_attempts", "message", "maintenance", "checks", "next_heal_time", "pid", "restarts", "last_output", "replicas_configured", "replicas_serving", "replicas")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_BY_FIELD_NUMBER: _ClassVar[int]
    LAST_CHECK_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_LATENCY_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_SUCCESSES_FIELD_NUMBER: _ClassVar[int]
    HEALING_STATE_FIELD_NUMBER: _ClassVar[int]
    HEAL_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_HEAL_TIME_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    LAST_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_CONFIGURED_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_SERVING_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: ComponentStatus
    critical: bool
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    blocked_by: str
    last_check_time: _timestamp_pb2.Timestamp
    last_latency: _duration_pb2.Duration
    consecutive_failures: int
    consecutive_successes: int
    healing_state: HealingState
    heal_attempts: int
    message: str
    maintenance: bool
    checks: _containers.RepeatedCompositeFieldContainer[CheckResult]
    next_heal_time: _timestamp_pb2.Timestamp
    pid: int
    restarts: int
    last_output: _containers.RepeatedScalarFieldContainer[str]
    replicas_configured: int
    replicas_serving: int
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaHealth]
    def __init__(self, name: _Optional[str] = ..., status: _Optional[_Union[ComponentStatus, str]] = ..., critical: _Optional[bool] = ..., depends_on: _Optional[_Iterable[str]] = ..., blocked_by: _Optional[str] = ..., last_check_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., consecutive_failures: _Optional[int] = ..., consecutive_successes: _Optional[int] = ..., healing_state: _Optional[_Union[HealingState, str]] = ..., heal_attempts: _Optional[int] = ..., message: _Optional[str] = ..., maintenance: _Optional[bool] = ..., checks: _Optional[_Iterable[_Union[CheckResult, _Mapping]]] = ..., next_heal_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pid: _Optional[int] = ..., restarts: _Optional[int] = ..., last_output: _Optional[_Iterable[str]] = ..., replicas_configured: _Optional[int] = ..., replicas_serving: _Optional[int] = ..., replicas: _Optional[_Iterable[_Union[ReplicaHealth, _Mapping]]] = ...) -> None: ...

class ReplicaHealth(_message.Message):
    __slots__ = ("replica", "pid", "status", "healing_state", "restarts", "message", "last_output", "health_port")
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HEALING_STATE_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LAST_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    HEALTH_PORT_FIELD_NUMBER: _ClassVar[int]
    replica: int
    pid: int
    status: ComponentStatus
    healing_state: HealingState
    restarts: int
    message: str
    last_output: _containers.RepeatedScalarFieldContainer[str]
    health_port: int
    def __init__(self, replica: _Optional[int] = ..., pid: _Optional[int] = ..., status: _Optional[_Union[ComponentStatus, str]] = ..., healing_state: _Optional[_Union[HealingState, str]] = ..., restarts: _Optional[int] = ..., message: _Optional[str] = ..., last_output: _Optional[_Iterable[str]] = ..., health_port: _Optional[int] = ...) -> None: ...

class SystemHealth(_message.Message):
    __slots__ = ("status", "degradation_level", "score", "components", "time", "live", "ready", "level_without")
    class LevelWithoutEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: DegradationLevel
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[DegradationLevel, str]] = ...) -> None: ...
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DEGRADATION_LEVEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    LEVEL_WITHOUT_FIELD_NUMBER: _ClassVar[int]
    status: SystemStatus
    degradation_level: DegradationLevel
    score: int
    components: _containers.RepeatedCompositeFieldContainer[ComponentHealth]
    time: _timestamp_pb2.Timestamp
    live: bool
    ready: bool
    level_without: _containers.ScalarMap[str, DegradationLevel]
    def __init__(self, status: _Optional[_Union[SystemStatus, str]] = ..., degradation_level: _Optional[_Union[DegradationLevel, str]] = ..., score: _Optional[int] = ..., components: _Optional[_Iterable[_Union[ComponentHealth, _Mapping]]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., live: _Optional[bool] = ..., ready: _Optional[bool] = ..., level_without: _Optional[_Mapping[str, DegradationLevel]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("seq", "time", "component", "type", "message", "from_value", "to_value")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FROM_VALUE_FIELD_NUMBER: _ClassVar[int]
    TO_VALUE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    time: _timestamp_pb2.Timestamp
    component: str
    type: EventType
    message: str
    from_value: str
    to_value: str
    def __init__(self, seq: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., component: _Optional[str] = ..., type: _Optional[_Union[EventType, str]] = ..., message: _Optional[str] = ..., from_value: _Optional[str] = ..., to_value: _Optional[str] = ...) -> None: ...

class GetSystemHealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSystemHealthResponse(_message.Message):
    __slots__ = ("health",)
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    health: SystemHealth
    def __init__(self, health: _Optional[_Union[SystemHealth, _Mapping]] = ...) -> None: ...

class WatchSystemHealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchSystemHealthResponse(_message.Message):
    __slots__ = ("health", "events")
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    health: SystemHealth
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, health: _Optional[_Union[SystemHealth, _Mapping]] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("component", "types", "page_size", "page_token")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    component: str
    types: _containers.RepeatedScalarFieldContainer[EventType]
    page_size: int
    page_token: str
    def __init__(self, component: _Optional[str] = ..., types: _Optional[_Iterable[_Union[EventType, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CheckNowRequest(_message.Message):
    __slots__ = ("component",)
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    component: str
    def __init__(self, component: _Optional[str] = ...) -> None: ...

class CheckNowResponse(_message.Message):
    __slots__ = ("component",)
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    component: ComponentHealth
    def __init__(self, component: _Optional[_Union[ComponentHealth, _Mapping]] = ...) -> None: ...

class HealRequest(_message.Message):
    __slots__ = ("component", "reason")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    component: str
    reason: str
    def __init__(self, component: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class HealResponse(_message.Message):
    __slots__ = ("component", "started", "message")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    component: ComponentHealth
    started: bool
    message: str
    def __init__(self, component: _Optional[_Union[ComponentHealth, _Mapping]] = ..., started: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class SetMaintenanceRequest(_message.Message):
    __slots__ = ("component", "enabled", "reason")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    component: str
    enabled: bool
    reason: str
    def __init__(self, component: _Optional[str] = ..., enabled: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class SetMaintenanceResponse(_message.Message):
    __slots__ = ("component",)
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    component: ComponentHealth
    def __init__(self, component: _Optional[_Union[ComponentHealth, _Mapping]] = ...) -> None: ...

class ControlComponentRequest(_message.Message):
    __slots__ = ("component", "action", "replica")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    component: str
    action: ControlAction
    replica: int
    def __init__(self, component: _Optional[str] = ..., action: _Optional[_Union[ControlAction, str]] = ..., replica: _Optional[int] = ...) -> None: ...

class ControlComponentResponse(_message.Message):
    __slots__ = ("component",)
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    component: ComponentHealth
    def __init__(self, component: _Optional[_Union[ComponentHealth, _Mapping]] = ...) -> None: ...

class TailLogRequest(_message.Message):
    __slots__ = ("component", "lines", "follow")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    component: str
    lines: int
    follow: bool
    def __init__(self, component: _Optional[str] = ..., lines: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class TailLogResponse(_message.Message):
    __slots__ = ("component", "replica", "line", "time")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    component: str
    replica: int
    line: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, component: _Optional[str] = ..., replica: _Optional[int] = ..., line: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
