"""Chooses the run store the config asks for (``store_backend``)."""

from __future__ import annotations

from collections.abc import Callable

from services.common import ConfigError
from services.workflow._config import WorkflowConfig
from services.workflow._pg_store import PostgresRunStore
from services.workflow._sqlite_store import SQLiteRunStore
from services.workflow._store import RunStore

__all__ = ["make_store"]


def make_store(cfg: WorkflowConfig, clock: Callable[[], float]) -> RunStore:
    """The configured store, not yet opened: SQLite (default) or PostgreSQL.

    Raises:
        ConfigError: the PostgreSQL password file cannot be read.
    """
    if cfg.store_backend == "postgres":
        try:
            return PostgresRunStore(cfg.postgres, clock=clock)
        except OSError as exc:
            raise ConfigError(
                "config",
                "postgres.password_file",
                f"cannot read: {exc.strerror}",
                str(cfg.postgres.password_file),
            ) from None
    return SQLiteRunStore(
        cfg.store_path, clock=clock, synchronous=cfg.store_synchronous, space=cfg.store_space
    )
