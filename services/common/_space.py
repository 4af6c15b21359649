"""Free space of the volume holding a SQLite store, measured against a reserve.

Space is a resource the store manages: below the reserve a store refuses *new* work
(StartRun answers RESOURCE_EXHAUSTED with a retry delay) while work it already accepted
keeps writing into what is left, and healthd's store check reports the same figures. One
definition of "low" serves both, so the service and its health check never disagree.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SpaceSample", "VolumeSpace", "reserve_bytes", "wal_bytes"]

_MIB = 1 << 20


def reserve_bytes(total_bytes: int, reserve_mb: float, reserve_percent: float) -> int:
    """The free space to keep on a volume of ``total_bytes``: the larger of both settings."""
    return int(max(reserve_mb * _MIB, total_bytes * reserve_percent / 100.0))


def wal_bytes(db_path: Path) -> int:
    """Size of ``db_path``'s write-ahead log (0 when there is none)."""
    try:
        return os.stat(f"{db_path}-wal").st_size
    except FileNotFoundError:
        return 0


@dataclass(frozen=True)
class SpaceSample:
    free_bytes: int
    """Bytes an unprivileged writer may still use (``f_bavail``)."""
    total_bytes: int
    reserve_bytes: int

    @property
    def low(self) -> bool:
        """Below the reserve: refuse new work, keep serving what was accepted."""
        return self.free_bytes < self.reserve_bytes

    def describe(self) -> str:
        free, total, reserve = (v / _MIB for v in (self.free_bytes, self.total_bytes, self.reserve_bytes))
        return f"{free:.1f} MiB free of {total:.1f} MiB (reserve {reserve:.1f} MiB)"


class VolumeSpace:
    """``statvfs`` of the directory holding a store, cached for ``ttl_s`` (callable from any thread).

    Args:
        path: The store file (its directory is measured, so a missing file is fine).
        reserve_mb, reserve_percent: The reserve (`reserve_bytes`).
        ttl_s: How long a sample is reused: a StartRun costs no syscall, and the figure
            is at most this old.
    """

    def __init__(
        self,
        path: Path,
        *,
        reserve_mb: float,
        reserve_percent: float = 0.0,
        ttl_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._mb, self._percent, self._ttl, self._clock = reserve_mb, reserve_percent, ttl_s, clock
        # Guards the cached sample; held only around plain assignments, never across I/O.
        self._lock = threading.Lock()
        self._cached: tuple[float, SpaceSample] | None = None

    def sample(self) -> SpaceSample:
        """The current figures (at most ``ttl_s`` old); an unreadable volume counts as full."""
        now = self._clock()
        with self._lock:
            cached = self._cached
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            st = os.statvfs(self.path.parent)
            total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
        except OSError:
            total, free = 0, 0
        fresh = SpaceSample(free, total, reserve_bytes(total, self._mb, self._percent))
        with self._lock:
            self._cached = (now, fresh)
        return fresh
