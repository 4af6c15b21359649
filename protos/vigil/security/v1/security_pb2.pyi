import datetime

from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SecurityLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SECURITY_LEVEL_UNSPECIFIED: _ClassVar[SecurityLevel]
    SECURITY_LEVEL_PUBLIC: _ClassVar[SecurityLevel]
    SECURITY_LEVEL_AUTHENTICATED: _ClassVar[SecurityLevel]
    SECURITY_LEVEL_PRIVILEGED: _ClassVar[SecurityLevel]
    SECURITY_LEVEL_ADMIN: _ClassVar[SecurityLevel]

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    DECISION_ALLOW: _ClassVar[Decision]
    DECISION_DENY: _ClassVar[Decision]

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_UNSPECIFIED: _ClassVar[Severity]
    SEVERITY_WARNING: _ClassVar[Severity]
    SEVERITY_ERROR: _ClassVar[Severity]
SECURITY_LEVEL_UNSPECIFIED: SecurityLevel
SECURITY_LEVEL_PUBLIC: SecurityLevel
SECURITY_LEVEL_AUTHENTICATED: SecurityLevel
SECURITY_LEVEL_PRIVILEGED: SecurityLevel
SECURITY_LEVEL_ADMIN: SecurityLevel
DECISION_UNSPECIFIED: Decision
DECISION_ALLOW: Decision
DECISION_DENY: Decision
SEVERITY_UNSPECIFIED: Severity
SEVERITY_WARNING: Severity
SEVERITY_ERROR: Severity

class Principal(_message.Message):
    __slots__ = ("subject", "level", "roles", "auth_method", "credential_id")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    AUTH_METHOD_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    subject: str
    level: SecurityLevel
    roles: _containers.RepeatedScalarFieldContainer[str]
    auth_method: str
    credential_id: str
    def __init__(self, subject: _Optional[str] = ..., level: _Optional[_Union[SecurityLevel, str]] = ..., roles: _Optional[_Iterable[str]] = ..., auth_method: _Optional[str] = ..., credential_id: _Optional[str] = ...) -> None: ...

class Finding(_message.Message):
    __slots__ = ("code", "field", "position", "message", "severity")
    CODE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    code: str
    field: str
    position: int
    message: str
    severity: Severity
    def __init__(self, code: _Optional[str] = ..., field: _Optional[str] = ..., position: _Optional[int] = ..., message: _Optional[str] = ..., severity: _Optional[_Union[Severity, str]] = ...) -> None: ...

class AuthenticateRequest(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class AuthenticateResponse(_message.Message):
    __slots__ = ("principal",)
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    principal: Principal
    def __init__(self, principal: _Optional[_Union[Principal, _Mapping]] = ...) -> None: ...

class AuthorizeRequest(_message.Message):
    __slots__ = ("token", "action", "resource", "request_id")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    token: str
    action: str
    resource: str
    request_id: str
    def __init__(self, token: _Optional[str] = ..., action: _Optional[str] = ..., resource: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class AuthorizeResponse(_message.Message):
    __slots__ = ("decision", "principal", "required_level", "matched_rule", "audit_id")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_LEVEL_FIELD_NUMBER: _ClassVar[int]
    MATCHED_RULE_FIELD_NUMBER: _ClassVar[int]
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    principal: Principal
    required_level: SecurityLevel
    matched_rule: str
    audit_id: str
    def __init__(self, decision: _Optional[_Union[Decision, str]] = ..., principal: _Optional[_Union[Principal, _Mapping]] = ..., required_level: _Optional[_Union[SecurityLevel, str]] = ..., matched_rule: _Optional[str] = ..., audit_id: _Optional[str] = ...) -> None: ...

class PromptInput(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class PathInput(_message.Message):
    __slots__ = ("path", "root")
    PATH_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    path: str
    root: str
    def __init__(self, path: _Optional[str] = ..., root: _Optional[str] = ...) -> None: ...

class TrajectoryPoint(_message.Message):
    __slots__ = ("t", "values")
    T_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    t: float
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, t: _Optional[float] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class TrajectoryInput(_message.Message):
    __slots__ = ("points", "require_monotonic_time")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_MONOTONIC_TIME_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[TrajectoryPoint]
    require_monotonic_time: bool
    def __init__(self, points: _Optional[_Iterable[_Union[TrajectoryPoint, _Mapping]]] = ..., require_monotonic_time: _Optional[bool] = ...) -> None: ...

class ParamsInput(_message.Message):
    __slots__ = ("params", "schema")
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    params: _struct_pb2.Struct
    schema: _struct_pb2.Struct
    def __init__(self, params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ValidateInputRequest(_message.Message):
    __slots__ = ("prompt", "path", "trajectory", "params")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    TRAJECTORY_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    prompt: PromptInput
    path: PathInput
    trajectory: TrajectoryInput
    params: ParamsInput
    def __init__(self, prompt: _Optional[_Union[PromptInput, _Mapping]] = ..., path: _Optional[_Union[PathInput, _Mapping]] = ..., trajectory: _Optional[_Union[TrajectoryInput, _Mapping]] = ..., params: _Optional[_Union[ParamsInput, _Mapping]] = ...) -> None: ...

class ValidateInputResponse(_message.Message):
    __slots__ = ("findings", "canonical_path")
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_PATH_FIELD_NUMBER: _ClassVar[int]
    findings: _containers.RepeatedCompositeFieldContainer[Finding]
    canonical_path: str
    def __init__(self, findings: _Optional[_Iterable[_Union[Finding, _Mapping]]] = ..., canonical_path: _Optional[str] = ...) -> None: ...

class ScreenRequest(_message.Message):
    __slots__ = ("token", "workflow", "params", "params_schema", "required_level", "prompt_fields", "path_fields", "trajectory_fields", "request_id")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_LEVEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELDS_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELDS_FIELD_NUMBER: _ClassVar[int]
    TRAJECTORY_FIELDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    token: str
    workflow: str
    params: _struct_pb2.Struct
    params_schema: _struct_pb2.Struct
    required_level: SecurityLevel
    prompt_fields: _containers.RepeatedScalarFieldContainer[str]
    path_fields: _containers.RepeatedScalarFieldContainer[str]
    trajectory_fields: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    def __init__(self, token: _Optional[str] = ..., workflow: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., params_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., required_level: _Optional[_Union[SecurityLevel, str]] = ..., prompt_fields: _Optional[_Iterable[str]] = ..., path_fields: _Optional[_Iterable[str]] = ..., trajectory_fields: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ScreenResponse(_message.Message):
    __slots__ = ("decision", "principal", "sanitized_params", "redactions", "findings", "audit_id")
    class RedactionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DECISION_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    SANITIZED_PARAMS_FIELD_NUMBER: _ClassVar[int]
    REDACTIONS_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    principal: Principal
    sanitized_params: _struct_pb2.Struct
    redactions: _containers.ScalarMap[str, int]
    findings: _containers.RepeatedCompositeFieldContainer[Finding]
    audit_id: str
    def __init__(self, decision: _Optional[_Union[Decision, str]] = ..., principal: _Optional[_Union[Principal, _Mapping]] = ..., sanitized_params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., redactions: _Optional[_Mapping[str, int]] = ..., findings: _Optional[_Iterable[_Union[Finding, _Mapping]]] = ..., audit_id: _Optional[str] = ...) -> None: ...

class ScreenCall(_message.Message):
    __slots__ = ("id", "request", "trace_context")
    class TraceContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    id: int
    request: ScreenRequest
    trace_context: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[int] = ..., request: _Optional[_Union[ScreenRequest, _Mapping]] = ..., trace_context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ScreenStreamRequest(_message.Message):
    __slots__ = ("calls",)
    CALLS_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[ScreenCall]
    def __init__(self, calls: _Optional[_Iterable[_Union[ScreenCall, _Mapping]]] = ...) -> None: ...

class Status(_message.Message):
    __slots__ = ("code", "message", "details")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    details: _containers.RepeatedCompositeFieldContainer[_any_pb2.Any]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., details: _Optional[_Iterable[_Union[_any_pb2.Any, _Mapping]]] = ...) -> None: ...

class ScreenResult(_message.Message):
    __slots__ = ("id", "response", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: int
    response: ScreenResponse
    status: Status
    def __init__(self, id: _Optional[int] = ..., response: _Optional[_Union[ScreenResponse, _Mapping]] = ..., status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class ScreenStreamResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ScreenResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ScreenResult, _Mapping]]] = ...) -> None: ...

class SanitizeRequest(_message.Message):
    __slots__ = ("text", "data")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    text: str
    data: _struct_pb2.Struct
    def __init__(self, text: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class SanitizeResponse(_message.Message):
    __slots__ = ("text", "data", "redactions")
    class RedactionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    REDACTIONS_FIELD_NUMBER: _ClassVar[int]
    text: str
    data: _struct_pb2.Struct
    redactions: _containers.ScalarMap[str, int]
    def __init__(self, text: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., redactions: _Optional[_Mapping[str, int]] = ...) -> None: ...

class VerifyArtifactRequest(_message.Message):
    __slots__ = ("path", "expected_sha256", "manifest_path")
    PATH_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SHA256_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    expected_sha256: str
    manifest_path: str
    def __init__(self, path: _Optional[str] = ..., expected_sha256: _Optional[str] = ..., manifest_path: _Optional[str] = ...) -> None: ...

class VerifyArtifactResponse(_message.Message):
    __slots__ = ("match", "actual_sha256", "expected_sha256", "size_bytes", "canonical_path", "message")
    MATCH_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_SHA256_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_PATH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    match: bool
    actual_sha256: str
    expected_sha256: str
    size_bytes: int
    canonical_path: str
    message: str
    def __init__(self, match: _Optional[bool] = ..., actual_sha256: _Optional[str] = ..., expected_sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ..., canonical_path: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class FetchArtifactRequest(_message.Message):
    __slots__ = ("url", "expected_sha256", "dest_name")
    URL_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SHA256_FIELD_NUMBER: _ClassVar[int]
    DEST_NAME_FIELD_NUMBER: _ClassVar[int]
    url: str
    expected_sha256: str
    dest_name: str
    def __init__(self, url: _Optional[str] = ..., expected_sha256: _Optional[str] = ..., dest_name: _Optional[str] = ...) -> None: ...

class FetchArtifactResponse(_message.Message):
    __slots__ = ("path", "sha256", "size_bytes")
    PATH_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    path: str
    sha256: str
    size_bytes: int
    def __init__(self, path: _Optional[str] = ..., sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("seq", "event_id", "time", "subject", "action", "resource", "decision", "reason", "request_id", "prev_hash", "hash")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    seq: int
    event_id: str
    time: _timestamp_pb2.Timestamp
    subject: str
    action: str
    resource: str
    decision: Decision
    reason: str
    request_id: str
    prev_hash: str
    hash: str
    def __init__(self, seq: _Optional[int] = ..., event_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., subject: _Optional[str] = ..., action: _Optional[str] = ..., resource: _Optional[str] = ..., decision: _Optional[_Union[Decision, str]] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ..., prev_hash: _Optional[str] = ..., hash: _Optional[str] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "subject", "action", "decision", "since", "until")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    subject: str
    action: str
    decision: Decision
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., subject: _Optional[str] = ..., action: _Optional[str] = ..., decision: _Optional[_Union[Decision, str]] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class VerifyAuditLogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyAuditLogResponse(_message.Message):
    __slots__ = ("ok", "records_checked", "first_bad_seq", "problem")
    OK_FIELD_NUMBER: _ClassVar[int]
    RECORDS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    FIRST_BAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    records_checked: int
    first_bad_seq: int
    problem: str
    def __init__(self, ok: _Optional[bool] = ..., records_checked: _Optional[int] = ..., first_bad_seq: _Optional[int] = ..., problem: _Optional[str] = ...) -> None: ...
