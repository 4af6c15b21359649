"""Builds every domain object of the security service from one `SecurityConfig`."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from services.common import ConfigError, SchemaTooNew, Unavailable, get_logger
from services.security._artifacts import ArtifactVerifier, SecureDownloader
from services.security._audit import AuditLog
from services.security._audit_keys import AuditKeys
from services.security._audit_open import open_audit_log
from services.security._audit_store import AuditStoreError
from services.security._auth import Authenticator
from services.security._config import SecurityConfig
from services.security._devkey import ensure_dev_key
from services.security._failaudit import FailureAuditLimiter
from services.security._gate import Gate
from services.security._inspector import Inspector
from services.security._paths import PathValidator
from services.security._policy import PolicyError, PolicyStore
from services.security._ratelimit import RateLimiter
from services.security._sanitize import Redactor
from services.security._screen import Screener

__all__ = ["SecurityCore"]

_log = get_logger("vigil.security")


@dataclass
class SecurityCore:
    """The service's domain objects, wired together. Construct with `from_config`."""

    config: SecurityConfig
    redactor: Redactor
    audit: AuditLog
    gate: Gate
    inspector: Inspector
    screener: Screener
    verifier: ArtifactVerifier
    downloader: SecureDownloader | None

    @classmethod
    def from_config(
        cls,
        cfg: SecurityConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> SecurityCore:
        """Build everything.

        Raises:
            ConfigError: naming the setting whose file or value is unusable (bad policy, key
                material, redaction pattern, CA bundle, or an audit database that cannot open).
        """
        # Pure checks of files and values first; the audit database (which logs and holds a
        # connection) is opened last, so a bad setting leaves nothing behind.
        with _setting("redaction_patterns"):
            redactor = Redactor(cfg.redaction_patterns)
        with _setting("policy_file"):
            policy = PolicyStore(cfg.policy_file)
        if cfg.dev_token_file is not None:
            with _setting("dev_token_file"):
                path, created = ensure_dev_key(
                    cfg.auth.keys_file, cfg.dev_token_file, source="security config"
                )
            if created:
                _log.warning("development ADMIN token created: %s (mode 0600; never use in production)", path)
        with _setting("auth"):
            auth = Authenticator(cfg.auth)
        inspector = Inspector(cfg, redactor)
        artifact_roots = list(cfg.roots.values()) + ([cfg.artifact_root] if cfg.artifact_root else [])
        verifier = ArtifactVerifier(
            *(PathValidator([root], allow_absolute=cfg.allow_absolute_paths) for root in artifact_roots)
        )
        downloader = None
        if cfg.artifact_root is not None:
            with _setting("artifact_root"):
                cfg.artifact_root.mkdir(parents=True, exist_ok=True)
            with _setting("downloads.ca_file"):
                downloader = SecureDownloader(cfg.downloads, PathValidator([cfg.artifact_root]))
        with _setting("audit.keys"):  # checked first: a bad key names its own setting
            AuditKeys.load(cfg.audit.key_config())
        with _setting("audit.db_path" if cfg.audit.backend == "sqlite" else "audit.postgres"):
            audit = open_audit_log(cfg.audit, redactor=redactor, now=wall)
        failures = FailureAuditLimiter(cfg.audit.failures, now=clock)
        gate = Gate(auth, policy, RateLimiter(cfg.rate_limit, now=clock), audit, failures)
        screener = Screener(gate, inspector, redactor)
        return cls(cfg, redactor, audit, gate, inspector, screener, verifier, downloader)

    def close(self) -> None:
        self.inspector.close()
        self.audit.close()


@contextlib.contextmanager
def _setting(name: str) -> Iterator[None]:
    """Turn a start-up failure while using setting ``name`` into a one-line `ConfigError`."""
    try:
        yield
    except (
        PolicyError,
        ValueError,
        OSError,
        re.error,
        sqlite3.Error,
        ssl.SSLError,
        Unavailable,
        SchemaTooNew,
        AuditStoreError,
    ) as exc:
        problem = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise ConfigError("security config", name, problem) from None
