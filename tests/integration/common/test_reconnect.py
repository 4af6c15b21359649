"""`FAST_RECONNECT`: a channel keeps trying a dead server at a steady ~100 ms, however long it
has been down, so a restarted server (healthd restarts one in about 0.35 s) is used again
within about 0.1 s of binding. The server here is a TCP listener that counts connection
attempts and closes each one: every close is a failed attempt the channel must retry."""

from __future__ import annotations

import asyncio
import itertools
import socket

import grpc
from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc

from services.common import FAST_RECONNECT


class _Refuser:
    """Accepts TCP connections on loopback and closes each at once, counting them."""

    def __init__(self) -> None:
        self.attempts: list[float] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()

        def accepted(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.attempts.append(loop.time())
            writer.transport.abort()

        self._server = await asyncio.start_server(accepted, "127.0.0.1", 0, family=socket.AF_INET)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


async def test_a_channel_retries_a_dead_server_every_100_ms_however_long_it_is_down() -> None:
    refuser = _Refuser()
    port = await refuser.start()
    # A private subchannel: no other test's channel to this address shares its backoff.
    options = [("grpc.use_local_subchannel_pool", 1), *FAST_RECONNECT]
    loop = asyncio.get_running_loop()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
            start = loop.time()
            stub = hpb_grpc.HealthStub(channel)
            try:
                await stub.Check(hpb.HealthCheckRequest(), timeout=3.5, wait_for_ready=True)
            except grpc.aio.AioRpcError as err:
                assert err.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        await refuser.stop()
    late = [t - start for t in refuser.attempts if t - start >= 1.5]
    # A backoff growing to 1 s (or gRPC's default, to 120 s) tries 2 times from 1.5 s to 3.5 s;
    # a steady 100 ms (+-20% jitter) about 20 times.
    assert len(late) >= 10, f"attempts at {[round(t - start, 2) for t in refuser.attempts]}"
    gaps = [b - a for a, b in itertools.pairwise(late)]
    assert max(gaps) < 0.3, f"gaps between attempts: {[round(g, 2) for g in gaps]}"
