"""healthd's client channels: fast reconnects, and one shared channel per target.

A sidecar healthd probes many components that are often one server (every component of a
process, every service of one port): 100 gRPC checks against one address were 100 channels,
each with its own client channel stack, resolver and load-balancing state, about 15 KB of
native memory apiece although gRPC already let them share one TCP connection (same target,
same arguments: one subchannel). `SharedChannels` hands the checks of one engine one channel
per (address, TLS) instead; calls and Watch streams of different checks are independent
streams on it, as they were on the shared connection before.
"""

from __future__ import annotations

import grpc

from healthd._config import ClientTLS
from services.common import FAST_RECONNECT, client_interceptors, open_client_channel

__all__ = ["SharedChannels", "open_channel"]

# gRPC's default reconnect backoff (1 s, growing to 120 s) would make healthd notice a restarted
# service late: a health checker should retry a dead address quickly and cheaply.
_RECONNECT = list(FAST_RECONNECT)


def open_channel(address: str, tls: ClientTLS | None) -> grpc.aio.Channel:
    """An aio channel to ``address`` with fast reconnects; TLS when ``tls`` is set."""
    # Unary calls traced (a probe is a child of its healthd.check span); Watch streams not.
    return open_client_channel(
        address, tls, options=_RECONNECT, interceptors=client_interceptors(streams=False)
    )


_Key = tuple[str, ClientTLS | None]


class SharedChannels:
    """Reference-counted channels by (address, TLS): the first `acquire` opens one, the
    last `release` closes it. Used from the event loop thread only (channels belong to it)."""

    def __init__(self) -> None:
        self._open: dict[_Key, tuple[grpc.aio.Channel, int]] = {}

    def acquire(self, address: str, tls: ClientTLS | None) -> grpc.aio.Channel:
        key = (address, tls)
        channel, refs = self._open.get(key) or (open_channel(address, tls), 0)
        self._open[key] = (channel, refs + 1)
        return channel

    async def release(self, address: str, tls: ClientTLS | None) -> None:
        key = (address, tls)
        channel, refs = self._open[key]
        if refs > 1:
            self._open[key] = (channel, refs - 1)
            return
        del self._open[key]
        await channel.close()

    def __len__(self) -> int:
        """Channels open now (for tests)."""
        return len(self._open)
