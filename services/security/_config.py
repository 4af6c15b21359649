"""Root configuration of the security service (YAML file + ``VIGIL_SECURITY_`` environment)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from services.common import ConfigModel, ServerConfig
from services.security._artifacts import DownloadConfig
from services.security._audit_keys import AuditKeyConfig
from services.security._audit_pg import AuditPostgresConfig
from services.security._auth import AuthConfig
from services.security._checkpool import ValidationConfig
from services.security._failaudit import FailureAuditConfig
from services.security._prompt import PromptLimits
from services.security._ratelimit import RateLimitConfig
from services.security._sanitize import RedactionPattern
from services.security._trajectory import TrajectorySpec

__all__ = ["DEFAULT_POLICY_FILE", "DEFAULT_PORT", "AuditConfig", "SecurityConfig"]

DEFAULT_PORT = 50052
DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.yaml")


class AuditConfig(ConfigModel):
    """Where and how durably the audit log is written, its MAC keys and its anchor."""

    backend: Literal["sqlite", "postgres"] = "sqlite"
    """``sqlite``: one file (``db_path``), shared by the replicas of one machine; ``postgres``:
    a database the replicas of every pod share (Kubernetes)."""
    db_path: Path = Path(".vigil/security-audit.db")
    """SQLite file of the MAC-chained audit log (created 0600 if missing)."""
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    """SQLite durability: NORMAL survives process crashes, FULL also power loss (slower); the
    head file is fsync'd with FULL only (a head outliving the records it names would be a false alarm)."""
    postgres: AuditPostgresConfig = AuditPostgresConfig()
    """The PostgreSQL database (``backend: postgres``)."""
    head_file: Path | None = None
    """Append-only anchor of the chain head (0600). Default: ``<db_path>.head`` with sqlite,
    none with postgres (each pod's disk is its own; the exported log line and gauge anchor it)."""
    keys: AuditKeyConfig = AuditKeyConfig()
    """MAC keys (never in the database). Default: ``audit-key`` beside ``db_path``, generated
    0600 on first start with sqlite; postgres needs ``key_file`` or ``key_env`` set explicitly."""
    health_probe_s: float = Field(default=1.0, gt=0, le=600)
    """How often writability is probed; the service is NOT_SERVING while records cannot be written."""
    failures: FailureAuditConfig = FailureAuditConfig()
    """Bounds on records of failed authentications (beyond them: counted into summary records)."""

    @model_validator(mode="after")
    def _postgres_keys_are_explicit(self) -> AuditConfig:
        # Replicas in several pods must share one key: a generated one would differ per pod.
        if self.backend == "postgres" and self.keys.key_file is None and self.keys.key_env is None:
            raise ValueError("audit.backend postgres needs audit.keys.key_file or audit.keys.key_env")
        return self

    def key_config(self) -> AuditKeyConfig:
        """`keys` with the defaults that depend on the backend filled in."""
        if self.keys.key_env is not None or self.keys.key_file is not None:
            return (
                self.keys
                if self.backend == "sqlite"
                else self.keys.model_copy(update={"generate_missing": False})
            )
        return self.keys.model_copy(update={"key_file": self.db_path.parent / "audit-key"})

    def anchor_path(self) -> Path | None:
        """Where the head file is (None: no head file)."""
        if self.head_file is not None or self.backend == "postgres":
            return self.head_file
        return self.db_path.with_name(self.db_path.name + ".head")


class SecurityConfig(ConfigModel):
    """Everything the security service reads at start-up."""

    server: ServerConfig = ServerConfig(port=DEFAULT_PORT)
    """gRPC listener (port, TLS/mTLS, limits)."""
    auth: AuthConfig = AuthConfig()
    """API key hashes and JWT verification keys."""
    policy_file: Path = DEFAULT_POLICY_FILE
    """Authorization policy (YAML); reloaded on SIGHUP or when the file changes."""
    policy_poll_s: float = Field(default=2.0, gt=0, le=3600)
    """How often the policy file is checked for changes."""
    roots: dict[str, Path] = {}
    """Named directories user-supplied paths must stay inside."""
    default_root: str = "default"
    """Root used when a request names none."""
    allow_absolute_paths: bool = False
    """Accept absolute paths that resolve inside a root (relative paths only when false)."""
    artifact_root: Path | None = None
    """Directory FetchArtifact stores verified downloads in; unset disables FetchArtifact."""
    prompt: PromptLimits = PromptLimits()
    """Prompt length/token limits and extra injection patterns."""
    trajectory: TrajectorySpec = TrajectorySpec(time_required=True)
    """Bounds for trajectory fields (points are ``{t, values}``)."""
    rate_limit: RateLimitConfig = RateLimitConfig()
    """Per-subject token buckets."""
    audit: AuditConfig = AuditConfig()
    """Audit log storage."""
    redaction_patterns: tuple[RedactionPattern, ...] = ()
    """Site-specific patterns redacted in addition to the built-in kinds."""
    downloads: DownloadConfig = DownloadConfig()
    """Allowed hosts, size cap and timeout of FetchArtifact."""
    dev_token_file: Path | None = None
    """Local development only: at start-up, if this file is missing, create a random ADMIN key,
    add its hash to ``auth.keys_file`` and write the token here (mode 0600). Never set in production."""
    validation: ValidationConfig = ValidationConfig()
    """Where input checks run (inline or on a bounded pool) and Sanitize's size limit."""
    schema_cache_size: int = Field(default=256, ge=1, le=100_000)
    """Compiled JSON Schemas kept (Screen receives the workflow's schema with every call)."""
    screen_stream_max_in_flight: int = Field(default=256, ge=1, le=10_000)
    """Screenings running at once per ScreenStream; beyond it the stream is not read (back-pressure)."""

    @model_validator(mode="after")
    def _default_root_exists(self) -> SecurityConfig:
        if self.roots and self.default_root not in self.roots:
            raise ValueError(f"default_root '{self.default_root}' is not one of roots {sorted(self.roots)}")
        return self
