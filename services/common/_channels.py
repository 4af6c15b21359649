"""Client channel options every Vigil client shares (healthd's checks, the workflow service's
security client, the shipped workflow client)."""

from __future__ import annotations

__all__ = ["FAST_RECONNECT"]

FAST_RECONNECT: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)
"""Reconnect quickly after the server comes back. gRPC's default backoff starts at 1 s and
grows to 120 s; meanwhile every call on the channel fails at once with UNAVAILABLE although
the server (restarted by healthd within seconds) already serves again."""
