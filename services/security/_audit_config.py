"""Where and how the audit log is written (`AuditConfig`), apart from the rest of the security
service's configuration: healthd keeps an audit log of its own and reads this model, and
importing `_config` would load every validator the security service has (~2 MB of RSS)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from services.common import ConfigModel
from services.security._audit_keys import AuditKeyConfig
from services.security._audit_pg import AuditPostgresConfig
from services.security._failaudit import FailureAuditConfig

__all__ = ["AuditConfig"]


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
