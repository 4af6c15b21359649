"""Settings of the PostgreSQL run store (``store_backend: postgres`` in the workflow config)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from services.common import ConfigModel, secret_value

__all__ = ["PostgresConfig", "read_password"]


class PostgresConfig(ConfigModel):
    """Connection to the PostgreSQL database several workflow replicas share."""

    dsn: str = Field(default="host=127.0.0.1 port=5432 dbname=vigil user=vigil", min_length=1)
    """libpq connection string (``key=value`` pairs or a ``postgresql://`` URL) without the password."""
    password_file: Path | None = None
    """File holding the password (a mounted Secret); unset: ``password``, else none or libpq's own."""
    password: SecretStr | None = None
    """The password given directly, best through ``VIGIL_WORKFLOW_POSTGRES__PASSWORD``; never shown
    (``**********`` in a config dump). Keep it out of ``dsn``."""

    @field_validator("dsn")
    @classmethod
    def _no_password_in_dsn(cls, value: str) -> str:
        # The dsn is logged and shown in errors; a password belongs in password_file.
        if re.search(r"(?i)(?:^|\s)password\s*=|://[^/@\s]*:[^/@\s]*@", value):
            raise ValueError("must not contain a password: use postgres.password_file (or password)")
        return value

    pool_size: int = Field(default=8, ge=1, le=200)
    """Most connections this replica holds open."""
    connect_timeout_s: float = Field(default=30.0, gt=0, le=600)
    """How long start-up waits for the database before failing (the orchestrator restarts it)."""


def read_password(config: PostgresConfig) -> str | None:
    """The password from ``password_file`` (a trailing newline is not part of it) or ``password``.

    Raises:
        ConfigError: the file cannot be read or is empty.
    """
    return secret_value(config.password, config.password_file, "postgres.password")
