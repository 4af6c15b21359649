"""Open the audit log an `AuditConfig` describes (the security service's, or healthd's own)."""

from __future__ import annotations

import time
from collections.abc import Callable

from services.security._audit import AuditLog
from services.security._audit_anchor import HeadFile
from services.security._audit_config import AuditConfig
from services.security._audit_keys import AuditKeys
from services.security._audit_pg import PostgresAuditStore
from services.security._audit_store import AuditStore, SqliteAuditStore
from services.security._sanitize import Redactor

__all__ = ["open_audit_log"]


def open_audit_log(
    cfg: AuditConfig,
    *,
    redactor: Redactor | None = None,
    now: Callable[[], float] = time.time,
    name: str = "security",
) -> AuditLog:
    """The keyed, anchored audit log of ``cfg`` (keys loaded first: a bad key opens nothing).

    Raises:
        AuditKeyError: the MAC key is missing or malformed.
        AuditStoreError: the database cannot be opened (PostgreSQL unreachable, ...).
        sqlite3.Error, OSError, SchemaTooNew: the SQLite file cannot be opened or migrated.
    """
    keys = AuditKeys.load(cfg.key_config())
    store: AuditStore
    if cfg.backend == "postgres":
        store = PostgresAuditStore(cfg.postgres)
    else:
        store = SqliteAuditStore(str(cfg.db_path), synchronous=cfg.synchronous)
    path = cfg.anchor_path()
    # As durable as the database's commits (HeadFile says why no more).
    head = (
        None if path is None else HeadFile(path, fsync=cfg.backend == "postgres" or cfg.synchronous == "FULL")
    )
    return AuditLog(store, keys=keys, head_file=head, redactor=redactor, now=now, name=name)
