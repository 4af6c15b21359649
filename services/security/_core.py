"""Builds every domain object of the security service from one `SecurityConfig`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from services.security._artifacts import ArtifactVerifier, SecureDownloader
from services.security._audit import AuditLog
from services.security._auth import Authenticator
from services.security._config import SecurityConfig
from services.security._gate import Gate
from services.security._paths import PathValidator
from services.security._policy import PolicyStore
from services.security._ratelimit import RateLimiter
from services.security._sanitize import Redactor
from services.security._screen import Inspector, Screener

__all__ = ["SecurityCore"]


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
        """Build everything; raises (PolicyError, ValueError, OSError) on bad key material or policy."""
        redactor = Redactor(cfg.redaction_patterns)
        audit = AuditLog(cfg.audit.db_path, redactor=redactor, synchronous=cfg.audit.synchronous, now=wall)
        gate = Gate(
            Authenticator(cfg.auth),
            PolicyStore(cfg.policy_file),
            RateLimiter(cfg.rate_limit, now=clock),
            audit,
        )
        inspector = Inspector(cfg)
        artifact_roots = list(cfg.roots.values()) + ([cfg.artifact_root] if cfg.artifact_root else [])
        verifier = ArtifactVerifier(PathValidator(artifact_roots, allow_absolute=cfg.allow_absolute_paths))
        downloader = None
        if cfg.artifact_root is not None:
            cfg.artifact_root.mkdir(parents=True, exist_ok=True)
            downloader = SecureDownloader(cfg.downloads, PathValidator([cfg.artifact_root]))
        screener = Screener(gate, inspector, redactor)
        return cls(cfg, redactor, audit, gate, inspector, screener, verifier, downloader)

    def close(self) -> None:
        self.audit.close()
