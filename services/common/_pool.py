"""A client stub over a few channels to one address, for servers replicated with SO_REUSEPORT.

Replicas sharing a port are one address to a client, and one gRPC channel is one connection,
so one replica: when it dies every call on that channel fails until the channel reconnects.
`PooledStub` holds ``size`` channels, each with its own connection (a local subchannel pool;
by default gRPC shares one subchannel per address between channels), which the kernel spreads
over the replicas. Calls go round-robin over the connected (READY) channels; a call that
fails UNAVAILABLE (a transport failure, or a server refusing) is tried again on each other
READY channel within the caller's deadline. With no channel READY (the service is down) a
call costs one attempt, as with a single channel: nothing waits on dead connections.
Inside a channel, the service config still retries UNAVAILABLE with backoff
(``retryPolicy``) and balances ``round_robin`` over the addresses a name resolves to.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from services.common._config import ClientTLSConfig
from services.common._server import open_client_channel

__all__ = ["PooledStub", "pooled_channels"]


def pooled_channels(
    address: str,
    size: int,
    service_config: dict[str, Any],
    options: Sequence[tuple[str, Any]] = (),
    interceptors: Sequence[grpc.aio.ClientInterceptor] | None = None,
    tls: ClientTLSConfig | None = None,
) -> list[grpc.aio.Channel]:
    """``size`` channels to ``address`` (TLS/mTLS when ``tls`` is set), each with a connection of its own."""
    config = {**service_config, "loadBalancingConfig": [{"round_robin": {}}]}
    opts = [
        *options,
        ("grpc.enable_retries", 1),
        ("grpc.service_config", json.dumps(config)),
        ("grpc.use_local_subchannel_pool", 1),
    ]
    return [open_client_channel(address, tls, options=opts, interceptors=interceptors) for _ in range(size)]


class PooledStub:
    """``stub_class`` over every channel; ``pooled.Method(request, timeout=..., ...)`` works as
    on a plain stub (unary-unary methods only)."""

    def __init__(
        self, stub_class: Callable[[grpc.aio.Channel], Any], channels: list[grpc.aio.Channel]
    ) -> None:
        if not channels:
            raise ValueError("a pool needs at least one channel")
        self.channels = channels
        self._stubs = [stub_class(c) for c in channels]
        self._next = itertools.count()

    def __getattr__(self, method: str) -> Callable[..., Any]:
        # `timeout` mirrors the stub signature: it is the gRPC deadline of the attempts.
        async def call(request: Any, *, timeout: float | None = None, **kwargs: Any) -> Any:  # noqa: ASYNC109
            deadline = None if timeout is None else time.monotonic() + timeout
            order = self._order()
            for i, index in enumerate(order):
                left = None if deadline is None else deadline - time.monotonic()
                try:
                    return await getattr(self._stubs[index], method)(request, timeout=left, **kwargs)
                except grpc.aio.AioRpcError as err:
                    retry = err.code() is grpc.StatusCode.UNAVAILABLE and i < len(order) - 1
                    if not retry or (deadline is not None and time.monotonic() >= deadline):
                        raise
            raise AssertionError("unreachable: the last attempt returns or raises")

        return call

    def _order(self) -> list[int]:
        """Channels to try: the READY ones from the next in rotation on; else just that one."""
        n = len(self.channels)
        first = next(self._next) % n
        rotation = [(first + i) % n for i in range(n)]
        ready = [i for i in rotation if self.channels[i].get_state() is grpc.ChannelConnectivity.READY]
        return ready or rotation[:1]

    async def close(self) -> None:
        """Close every channel."""
        for channel in self.channels:
            await channel.close()
