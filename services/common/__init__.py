"""Shared server runtime for every Vigil process: config, errors, health, bootstrap."""

from services.common._batching import next_batch
from services.common._carried import CarriedCall, carried_server_call
from services.common._channels import FAST_RECONNECT
from services.common._clock import SYSTEM_CLOCK, Clock, Now, Sleep, SystemClock
from services.common._config import (
    ClientTLSConfig,
    ConfigError,
    ConfigModel,
    ServerConfig,
    TLSConfig,
    is_secret_setting,
    load_config,
    parse_yaml,
)
from services.common._convert import optional_timestamp
from services.common._errors import (
    Aborted,
    AlreadyExists,
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    VigilError,
)
from services.common._health import HEALTH_SERVICE_NAME, HealthServicer, ServingStatus
from services.common._heap import settle_heap
from services.common._instrument import Instrumentation
from services.common._interceptors import ErrorMapping, error_for, wrap_handler
from services.common._levels import (
    DegradationLevel,
    DegradationLevelName,
    SecurityLevel,
    SecurityLevelName,
    degradation_level_pb,
    new_run_refusal,
    security_level_pb,
)
from services.common._logging import add_log_enricher, configure_logging, get_logger, set_log_redactor
from services.common._logs import install_log_hooks, keep_operational, log_fields
from services.common._metrics import LATENCY_BUCKETS, MetricsInterceptor, MetricsServer
from services.common._migrations import (
    Migration,
    SchemaTooNew,
    check_migrations,
    migrate_sqlite,
    schema_too_new,
)
from services.common._observe import Observation, ObservingInterceptor
from services.common._offload import INLINE_ONLY, Offload
from services.common._periodic import every, publish_serving
from services.common._pool import PooledStub, pooled_channels
from services.common._retry import RetryAfter
from services.common._secrets import (
    ensure_secret_file,
    read_secret_file,
    secret_value,
    write_private,
    write_private_once,
)
from services.common._server import (
    SUPERVISOR_PID_ENV,
    VigilServer,
    channel_credentials,
    open_blocking_channel,
    open_client_channel,
    run_main,
    server_credentials,
)
from services.common._space import SpaceSample, VolumeSpace, reserve_bytes, wal_bytes
from services.common._sqlite import (
    SYNCHRONOUS_MODES,
    create_private_dirs,
    open_sqlite,
    run_each,
    run_in_savepoints,
)
from services.common._status import (
    bad_request_violations,
    from_rpc_error,
    retry_delay_s,
    rpc_code,
    rpc_error_from_status,
    status_code,
    status_proto,
    to_grpc_status,
)
from services.common._structs import list_to_py, set_value, struct_to_dict, value_to_py
from services.common._telemetry import (
    TRACE_ID_METADATA,
    TracingInterceptor,
    client_interceptors,
    setup_tracing,
    shutdown_tracing,
    tracer,
    tracing_enabled,
)
from services.common._tokens import bearer_token, optional_bearer_token
from services.common._writer import BatchWriter

__all__ = [
    "FAST_RECONNECT",
    "HEALTH_SERVICE_NAME",
    "INLINE_ONLY",
    "LATENCY_BUCKETS",
    "SUPERVISOR_PID_ENV",
    "SYNCHRONOUS_MODES",
    "SYSTEM_CLOCK",
    "TRACE_ID_METADATA",
    "Aborted",
    "AlreadyExists",
    "BatchWriter",
    "Cancelled",
    "CarriedCall",
    "ClientTLSConfig",
    "Clock",
    "ConfigError",
    "ConfigModel",
    "DeadlineExceeded",
    "DegradationLevel",
    "DegradationLevelName",
    "ErrorMapping",
    "FailedPrecondition",
    "FieldViolation",
    "HealthServicer",
    "Instrumentation",
    "InvalidArgument",
    "MetricsInterceptor",
    "MetricsServer",
    "Migration",
    "NotFound",
    "Now",
    "Observation",
    "ObservingInterceptor",
    "Offload",
    "PermissionDenied",
    "PooledStub",
    "ResourceExhausted",
    "RetryAfter",
    "SchemaTooNew",
    "SecurityLevel",
    "SecurityLevelName",
    "ServerConfig",
    "ServingStatus",
    "Sleep",
    "SpaceSample",
    "SystemClock",
    "TLSConfig",
    "TracingInterceptor",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "VigilError",
    "VigilServer",
    "VolumeSpace",
    "add_log_enricher",
    "bad_request_violations",
    "bearer_token",
    "carried_server_call",
    "channel_credentials",
    "check_migrations",
    "client_interceptors",
    "configure_logging",
    "create_private_dirs",
    "degradation_level_pb",
    "ensure_secret_file",
    "error_for",
    "every",
    "from_rpc_error",
    "get_logger",
    "install_log_hooks",
    "is_secret_setting",
    "keep_operational",
    "list_to_py",
    "load_config",
    "log_fields",
    "migrate_sqlite",
    "new_run_refusal",
    "next_batch",
    "open_blocking_channel",
    "open_client_channel",
    "open_sqlite",
    "optional_bearer_token",
    "optional_timestamp",
    "parse_yaml",
    "pooled_channels",
    "publish_serving",
    "read_secret_file",
    "reserve_bytes",
    "retry_delay_s",
    "rpc_code",
    "rpc_error_from_status",
    "run_each",
    "run_in_savepoints",
    "run_main",
    "schema_too_new",
    "secret_value",
    "security_level_pb",
    "server_credentials",
    "set_log_redactor",
    "set_value",
    "settle_heap",
    "setup_tracing",
    "shutdown_tracing",
    "status_code",
    "status_proto",
    "struct_to_dict",
    "to_grpc_status",
    "tracer",
    "tracing_enabled",
    "value_to_py",
    "wal_bytes",
    "wrap_handler",
    "write_private",
    "write_private_once",
]
