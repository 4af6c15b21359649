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

__all__ = [
    "AlreadyExists",
    "Cancelled",
    "ConfigError",
    "ConfigModel",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "ServerConfig",
    "TLSConfig",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "VigilError",
    "load_config",
]
