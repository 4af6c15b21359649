"""Versioned schema of the audit log (the versioning rules: `services.common._migrations`).

`MIGRATIONS` is append-only: a change is a new entry with the next version, applied when
an `AuditLog` opens its file. Version 1 is the schema from before versioning and keeps its
``IF NOT EXISTS`` so such a file is adopted with its records (and their chain) intact.
"""

from __future__ import annotations

from services.common import Migration

__all__ = ["MIGRATIONS"]

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "hash-chained audit records",
        """
        CREATE TABLE IF NOT EXISTS audit (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            ts REAL NOT NULL,
            request_id TEXT NOT NULL,
            subject TEXT NOT NULL,
            action TEXT NOT NULL,
            resource TEXT NOT NULL,
            decision TEXT NOT NULL,
            reason TEXT NOT NULL,
            details TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS audit_subject ON audit(subject, seq);
        CREATE INDEX IF NOT EXISTS audit_request ON audit(request_id);
        """,
    ),
    Migration(
        2,
        "keyed records: MAC key id, and the legacy boundary",
        """
        ALTER TABLE audit ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
        CREATE TABLE audit_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        -- Records up to here predate keys and verify by their plain digest; later ones need a MAC.
        INSERT INTO audit_meta (name, value) SELECT 'legacy_until', COALESCE(MAX(seq), 0) FROM audit;
        """,
    ),
)
