"""Space housekeeping of the SQLite run store, run by its writer thread when idle.

Why: a WAL that nobody truncates keeps the largest size it ever reached, and on a small
volume the store itself filled the disk (issue 14). Bounded by `open_sqlite`'s
``wal_limit_bytes`` while busy, the WAL is checkpointed and truncated here once the writer
is idle; and a few pages stay allocated inside the database file, so accepted runs can
still write when something else fills the volume.
"""

from __future__ import annotations

import sqlite3

from services.common import VolumeSpace, run_in_savepoints
from services.workflow._config import StoreSpaceConfig

__all__ = ["housekeep"]

_MIB = 1 << 20
# Housekeeping waits this long at most for readers (another replica) before giving up: it
# must never stall a commit queued meanwhile.
_BUSY_MS = 100
_MIN_TOP_UP_PAGES = 16  # top up in chunks worth a write, not page by page


def housekeep(conn: sqlite3.Connection, space: VolumeSpace, cfg: StoreSpaceConfig) -> None:
    """Checkpoint the WAL and keep pages pre-allocated in the file (writer thread, idle).

    With space to spare the WAL is checkpointed and truncated (its blocks go back to the
    volume) and the file's freelist is topped up to ``preallocate_mb`` (a blob inserted and
    deleted in one commit: later rows reuse those pages without growing the file). Below the
    reserve the WAL is only checkpointed: its file, already allocated, is then rewritten
    from the start, so the writes of accepted runs need no new blocks.
    """
    low = space.sample().low
    busy = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
    conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
    try:
        conn.execute(f"PRAGMA wal_checkpoint({'PASSIVE' if low else 'TRUNCATE'})").fetchone()
        if low:
            return
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
        free_pages = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        missing = int(cfg.preallocate_mb * _MIB) // page - free_pages
        if missing >= _MIN_TOP_UP_PAGES:
            run_in_savepoints(conn, [lambda c: _preallocate(c, missing * page)], lambda exc: exc)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error:
        pass  # busy (a reader on another replica) or full: the next idle period tries again
    finally:
        conn.execute(f"PRAGMA busy_timeout={busy}")


def _preallocate(conn: sqlite3.Connection, size: int) -> None:
    """Grow the file's freelist by about ``size`` bytes (a blob written, then deleted)."""
    conn.execute("INSERT INTO space_reserve (pad) VALUES (zeroblob(?))", (size,))
    conn.execute("DELETE FROM space_reserve")
