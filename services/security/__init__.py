"""Vigil security service: authentication, authorization, validation, sanitization, integrity, audit.

The domain objects here have no gRPC dependency (healthd imports `Authenticator` to
verify ADMIN tokens itself); the servicer in `_service` is a thin translation layer.
"""

from services.security._artifacts import (
    ArtifactResult,
    ArtifactVerifier,
    DownloadConfig,
    SecureDownloader,
    sha256_file,
)
from services.security._audit import AuditFilter, AuditLog, AuditRecord, VerifyResult
from services.security._auth import AuthConfig, Authenticator, bearer_token, load_keys_file
from services.security._config import AuditConfig, SecurityConfig
from services.security._devkey import ensure_dev_token
from services.security._findings import Finding, to_violations
from services.security._gate import Gate
from services.security._jwt import JWTConfig, JWTVerifier
from services.security._keys import ApiKeyVerifier, KeyEntry, hash_token, new_key
from services.security._params import ParamsValidator, select_fields
from services.security._paths import PathValidator
from services.security._policy import Decision, Policy, PolicyError, PolicyStore, Rule
from services.security._principal import Level, Principal
from services.security._prompt import PromptLimits, PromptValidator
from services.security._ratelimit import RateLimitConfig, RateLimiter
from services.security._sanitize import RedactionPattern, Redactor, luhn_ok, redact
from services.security._screen import Inspector, Screener, ScreenInput, ScreenOutcome
from services.security._trajectory import TrajectorySpec, TrajectoryValidator

__all__ = [
    "ApiKeyVerifier",
    "ArtifactResult",
    "ArtifactVerifier",
    "AuditConfig",
    "AuditFilter",
    "AuditLog",
    "AuditRecord",
    "AuthConfig",
    "Authenticator",
    "Decision",
    "DownloadConfig",
    "Finding",
    "Gate",
    "Inspector",
    "JWTConfig",
    "JWTVerifier",
    "KeyEntry",
    "Level",
    "ParamsValidator",
    "PathValidator",
    "Policy",
    "PolicyError",
    "PolicyStore",
    "Principal",
    "PromptLimits",
    "PromptValidator",
    "RateLimitConfig",
    "RateLimiter",
    "RedactionPattern",
    "Redactor",
    "Rule",
    "ScreenInput",
    "ScreenOutcome",
    "Screener",
    "SecureDownloader",
    "SecurityConfig",
    "TrajectorySpec",
    "TrajectoryValidator",
    "VerifyResult",
    "bearer_token",
    "ensure_dev_token",
    "hash_token",
    "load_keys_file",
    "luhn_ok",
    "new_key",
    "redact",
    "select_fields",
    "sha256_file",
    "to_violations",
]
