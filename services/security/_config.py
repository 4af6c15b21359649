"""Root configuration of the security service (YAML file + ``VIGIL_SECURITY_`` environment)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from services.common import ConfigModel, ServerConfig
from services.security._artifacts import DownloadConfig
from services.security._audit_config import AuditConfig
from services.security._auth import AuthConfig
from services.security._checkpool import ValidationConfig
from services.security._prompt import PromptLimits
from services.security._ratelimit import RateLimitConfig
from services.security._sanitize import RedactionPattern
from services.security._trajectory import TrajectorySpec

__all__ = ["DEFAULT_POLICY_FILE", "DEFAULT_PORT", "AuditConfig", "SecurityConfig"]

DEFAULT_PORT = 50052
DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.yaml")


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
