"""The drills' fault proxy itself: forwards, delays and blackholes as told (no stack needed)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.chaos.proxy import FaultProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _round_trip(address: str, payload: bytes, wait_s: float) -> bytes | None:
    host, _, port = address.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), wait_s)
    except TimeoutError:
        return None
    finally:
        writer.close()


@pytest.fixture
async def proxy():
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fault = FaultProxy(f"127.0.0.1:{port}")
    await fault.start()
    yield fault
    await fault.stop()
    server.close()


async def test_forwards_both_ways(proxy: FaultProxy) -> None:
    assert await _round_trip(proxy.address, b"hello", 5) == b"hello"


async def test_injected_latency_applies_each_way(proxy: FaultProxy) -> None:
    proxy.delay_s = 0.15
    start = time.monotonic()
    assert await _round_trip(proxy.address, b"slow", 5) == b"slow"
    assert time.monotonic() - start >= 0.3  # delayed going out and coming back


async def test_blackhole_swallows_then_recovers(proxy: FaultProxy) -> None:
    proxy.blackhole = True
    assert await _round_trip(proxy.address, b"lost", 0.3) is None
    proxy.blackhole = False
    assert await _round_trip(proxy.address, b"back", 5) == b"back"
