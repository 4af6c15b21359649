"""Vigil security service: authentication, authorization, validation, sanitization, integrity, audit.

The domain objects here have no gRPC dependency (healthd imports `Authenticator` to
verify ADMIN tokens itself); the servicer in `_service` is a thin translation layer over
`_operations`, and `_app` assembles the process.

Names are imported lazily (PEP 562): healthd imports `Authenticator` from here and must not
pay for the validators, jsonschema and the artifact downloader (about 16 MB of its RSS).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.security._artifacts import (
        ArtifactResult,
        ArtifactVerifier,
        DownloadConfig,
        SecureDownloader,
        sha256_file,
    )
    from services.security._audit import AuditFilter, AuditLog, AuditRecord, VerifyResult
    from services.security._audit_anchor import HeadFile
    from services.security._audit_config import AuditConfig
    from services.security._audit_keys import AuditKeyConfig, AuditKeyError, AuditKeys
    from services.security._audit_open import open_audit_log
    from services.security._audit_pg import AuditPostgresConfig, PostgresAuditStore
    from services.security._audit_store import AuditStoreError, SqliteAuditStore
    from services.security._auth import AuthConfig, Authenticator, load_keys_file
    from services.security._config import SecurityConfig
    from services.security._devkey import ensure_dev_token
    from services.security._findings import Finding, to_violations
    from services.security._gate import Gate
    from services.security._inspector import Inspector
    from services.security._jwt import JWTConfig, JWTVerifier
    from services.security._keyring import KeyMaterialAuthenticator
    from services.security._keys import ApiKeyVerifier, KeyEntry, hash_token, new_key
    from services.security._params import ParamsValidator, select_fields
    from services.security._paths import PathValidator
    from services.security._policy import Decision, Policy, PolicyError, PolicyStore, Rule
    from services.security._principal import Level, Principal
    from services.security._prompt import PromptLimits, PromptValidator
    from services.security._ratelimit import Rate, RateLimitConfig, RateLimiter
    from services.security._sanitize import (
        RedactionPattern,
        Redactor,
        install_log_redaction,
        luhn_ok,
        redact,
        redact_message,
    )
    from services.security._screen import Screener, ScreenInput, ScreenOutcome
    from services.security._trajectory import TrajectorySpec, TrajectoryValidator

# Public name -> module defining it.
_EXPORTS = {
    "ApiKeyVerifier": "services.security._keys",
    "ArtifactResult": "services.security._artifacts",
    "ArtifactVerifier": "services.security._artifacts",
    "AuditConfig": "services.security._audit_config",
    "AuditFilter": "services.security._audit",
    "AuditKeyConfig": "services.security._audit_keys",
    "AuditKeyError": "services.security._audit_keys",
    "AuditKeys": "services.security._audit_keys",
    "AuditLog": "services.security._audit",
    "AuditPostgresConfig": "services.security._audit_pg",
    "HeadFile": "services.security._audit_anchor",
    "PostgresAuditStore": "services.security._audit_pg",
    "SqliteAuditStore": "services.security._audit_store",
    "AuditStoreError": "services.security._audit_store",
    "open_audit_log": "services.security._audit_open",
    "AuditRecord": "services.security._audit",
    "AuthConfig": "services.security._auth",
    "Authenticator": "services.security._auth",
    "Decision": "services.security._policy",
    "DownloadConfig": "services.security._artifacts",
    "Finding": "services.security._findings",
    "Gate": "services.security._gate",
    "Inspector": "services.security._inspector",
    "JWTConfig": "services.security._jwt",
    "JWTVerifier": "services.security._jwt",
    "KeyEntry": "services.security._keys",
    "KeyMaterialAuthenticator": "services.security._keyring",
    "Level": "services.security._principal",
    "ParamsValidator": "services.security._params",
    "PathValidator": "services.security._paths",
    "Policy": "services.security._policy",
    "PolicyError": "services.security._policy",
    "PolicyStore": "services.security._policy",
    "Principal": "services.security._principal",
    "PromptLimits": "services.security._prompt",
    "PromptValidator": "services.security._prompt",
    "Rate": "services.security._ratelimit",
    "RateLimitConfig": "services.security._ratelimit",
    "RateLimiter": "services.security._ratelimit",
    "RedactionPattern": "services.security._sanitize",
    "Redactor": "services.security._sanitize",
    "Rule": "services.security._policy",
    "ScreenInput": "services.security._screen",
    "ScreenOutcome": "services.security._screen",
    "Screener": "services.security._screen",
    "SecureDownloader": "services.security._artifacts",
    "SecurityConfig": "services.security._config",
    "TrajectorySpec": "services.security._trajectory",
    "TrajectoryValidator": "services.security._trajectory",
    "VerifyResult": "services.security._audit",
    "ensure_dev_token": "services.security._devkey",
    "hash_token": "services.security._keys",
    "load_keys_file": "services.security._auth",
    "luhn_ok": "services.security._sanitize",
    "new_key": "services.security._keys",
    "redact": "services.security._sanitize",
    "redact_message": "services.security._sanitize",
    "install_log_redaction": "services.security._sanitize",
    "select_fields": "services.security._params",
    "sha256_file": "services.security._artifacts",
    "to_violations": "services.security._findings",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'services.security' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ApiKeyVerifier",
    "ArtifactResult",
    "ArtifactVerifier",
    "AuditConfig",
    "AuditFilter",
    "AuditKeyConfig",
    "AuditKeyError",
    "AuditKeys",
    "AuditLog",
    "AuditPostgresConfig",
    "AuditRecord",
    "AuditStoreError",
    "AuthConfig",
    "Authenticator",
    "Decision",
    "DownloadConfig",
    "Finding",
    "Gate",
    "HeadFile",
    "Inspector",
    "JWTConfig",
    "JWTVerifier",
    "KeyEntry",
    "KeyMaterialAuthenticator",
    "Level",
    "ParamsValidator",
    "PathValidator",
    "Policy",
    "PolicyError",
    "PolicyStore",
    "PostgresAuditStore",
    "Principal",
    "PromptLimits",
    "PromptValidator",
    "Rate",
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
    "SqliteAuditStore",
    "TrajectorySpec",
    "TrajectoryValidator",
    "VerifyResult",
    "ensure_dev_token",
    "hash_token",
    "install_log_redaction",
    "load_keys_file",
    "luhn_ok",
    "new_key",
    "open_audit_log",
    "redact",
    "redact_message",
    "select_fields",
    "sha256_file",
    "to_violations",
]
