"""Shared server runtime for every Vigil process: config, errors, health, bootstrap."""

from services.common._config import ConfigError, ConfigModel, ServerConfig, TLSConfig, load_config
from services.common._errors import (
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
from services.common._interceptors import ErrorMapping, wrap_handler
from services.common._logging import add_log_enricher, add_log_redactor, configure_logging, get_logger
from services.common._server import SUPERVISOR_PID_ENV, VigilServer, run_main, server_credentials
from services.common._status import bad_request_violations, retry_delay_s, to_grpc_status

__all__ = [
    "HEALTH_SERVICE_NAME",
    "SUPERVISOR_PID_ENV",
    "AlreadyExists",
    "Cancelled",
    "ConfigError",
    "ConfigModel",
    "DeadlineExceeded",
    "ErrorMapping",
    "FailedPrecondition",
    "FieldViolation",
    "HealthServicer",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "ServerConfig",
    "ServingStatus",
    "TLSConfig",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "VigilError",
    "VigilServer",
    "add_log_enricher",
    "add_log_redactor",
    "bad_request_violations",
    "configure_logging",
    "get_logger",
    "load_config",
    "retry_delay_s",
    "run_main",
    "server_credentials",
    "to_grpc_status",
    "wrap_handler",
]
