"""Client channel options every Vigil client shares (healthd's checks, the workflow service's
security client, the shipped workflow client)."""

from __future__ import annotations

__all__ = ["FAST_RECONNECT"]

FAST_RECONNECT: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 1000),
)
"""Reconnect quickly after the server comes back: every ~100 ms (gRPC's jitter: +-20%) while
it is down, instead of gRPC's default backoff of 1 s growing to 120 s, or of a backoff growing
at all (100 ms growing to 1 s left a caller refused for up to 0.3 s after a security replica
healthd restarted in 0.33 s: 0.56-0.64 s without a good call instead of 0.41-0.44 s in the
kill -9 drill). A refused connect on a dead port costs microseconds, so ten attempts a second
per channel cost nothing noticeable; gRPC accepts nothing below 100 ms anyway.

``min_reconnect_backoff_ms`` is gRPC's minimum *connect timeout* (connection-backoff.md:
MIN_CONNECT_TIMEOUT), not a backoff: each attempt may take this long to connect (TCP, TLS,
HTTP/2), so a slow handshake still succeeds although attempts start every 100 ms.

Each key once: given a key twice, gRPC keeps the first (appending overrides does nothing)."""
