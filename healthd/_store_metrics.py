"""Gauges of the store checks: what the ``store_space_low`` alert rule and Prometheus read.

Their own module (importing nothing of healthd) because both the checks and the alerting
loop use them, and the alerting package is imported by healthd's config.
"""

from __future__ import annotations

from prometheus_client import Gauge

__all__ = ["STORE_FREE_BYTES", "STORE_RESERVE_BYTES", "STORE_WAL_BYTES"]

STORE_FREE_BYTES = Gauge(
    "vigil_store_free_bytes",
    "Free bytes of the volume holding a SQLite store (healthd store check).",
    ["store"],
)
STORE_RESERVE_BYTES = Gauge(
    "vigil_store_reserve_bytes", "Free space below which the store refuses new runs.", ["store"]
)
STORE_WAL_BYTES = Gauge("vigil_store_wal_bytes", "Size of the store's write-ahead log.", ["store"])
