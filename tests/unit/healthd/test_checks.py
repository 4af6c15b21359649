"""Each check kind against real targets (sockets, processes, files, a real gRPC server)."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2 as _hpb
from grpc_health.v1 import health_pb2_grpc as _hpb_grpc
from prometheus_client import REGISTRY

from healthd import CheckResult, Status
from healthd._channels import SharedChannels
from healthd._checks import (
    ExecCheck,
    GrpcHealthCheck,
    HttpCheck,
    ProcessCheck,
    StoreCheck,
    TcpCheck,
    run_check,
    split_address,
)
from healthd._config import (
    ExecCheckConfig,
    GrpcCheckConfig,
    HttpCheckConfig,
    StoreCheckConfig,
    TcpCheckConfig,
)
from services.common import HealthServicer, wal_bytes
from tests.healthd_util import garbage_server, pid_alive

SERVING = _hpb.HealthCheckResponse.SERVING
NOT_SERVING = _hpb.HealthCheckResponse.NOT_SERVING


@pytest.fixture
async def health_server() -> AsyncIterator[tuple[str, HealthServicer, grpc.aio.Server]]:
    server = grpc.aio.server()
    health = HealthServicer()
    _hpb_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await health.set("svc", SERVING)
    yield f"127.0.0.1:{port}", health, server
    await server.stop(0)


async def test_grpc_check_serving_not_serving_unknown(health_server) -> None:  # type: ignore[no-untyped-def]
    addr, health, _ = health_server
    check = GrpcHealthCheck(GrpcCheckConfig(kind="grpc", address=addr, service="svc"))
    assert (await check.check(1.0)).status is Status.SERVING
    await health.set("svc", NOT_SERVING)
    assert (await check.check(1.0)).status is Status.NOT_SERVING
    missing = GrpcHealthCheck(GrpcCheckConfig(kind="grpc", address=addr, service="nope"))
    result = await missing.check(1.0)
    assert result.status is Status.NOT_SERVING and "NOT_FOUND" in result.message
    await check.close()
    await missing.close()


async def test_grpc_watch_breaks_decisively_when_server_dies(health_server) -> None:  # type: ignore[no-untyped-def]
    addr, health, server = health_server
    check = GrpcHealthCheck(GrpcCheckConfig(kind="grpc", address=addr, service="svc"))
    stream = check.watch(retry_s=0.05)
    first = await asyncio.wait_for(anext(stream), 5)
    assert first.status is Status.SERVING and not first.decisive
    await health.set("svc", NOT_SERVING)
    assert (await asyncio.wait_for(anext(stream), 5)).status is Status.NOT_SERVING
    await server.stop(0)
    broken = await asyncio.wait_for(anext(stream), 5)
    assert broken.status is Status.NOT_SERVING and broken.decisive
    await stream.aclose()
    await check.close()


async def test_grpc_check_connection_refused() -> None:
    check = GrpcHealthCheck(GrpcCheckConfig(kind="grpc", address="127.0.0.1:1"))
    result = await run_check(check, 1.0)
    assert result.status is Status.NOT_SERVING and "UNAVAILABLE" in result.message
    await check.close()


async def test_tcp_check() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    assert (await TcpCheck(TcpCheckConfig(kind="tcp", address=f"127.0.0.1:{port}")).check(1)).ok
    server.close()
    await server.wait_closed()
    result = await TcpCheck(TcpCheckConfig(kind="tcp", address=f"127.0.0.1:{port}")).check(1)
    assert result.status is Status.NOT_SERVING


async def _http_server(status: int, body: bytes) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_http_check_target_speaking_garbage_is_not_serving() -> None:
    server, port = await garbage_server()
    try:
        check = HttpCheck(HttpCheckConfig(kind="http", url=f"http://127.0.0.1:{port}/healthz"))
        result = await check.check(2)  # the check itself, not run_check's backstop
        assert result.status is Status.NOT_SERVING and "BadStatusLine" in result.message
    finally:
        server.close()


class _Exploding:
    """Fault injector: a check with a bug (raises instead of returning a result)."""

    async def check(self, timeout_s: float) -> CheckResult:
        raise KeyError("no such thing")

    async def close(self) -> None:
        return None


async def test_run_check_turns_a_raising_check_into_not_serving() -> None:
    result = await run_check(_Exploding(), 1.0)
    assert result.status is Status.NOT_SERVING
    assert "KeyError" in result.message and "no such thing" in result.message


async def test_http_check_status_and_body() -> None:
    server, port = await _http_server(200, b"all good")
    url = f"http://127.0.0.1:{port}/healthz"
    assert (await HttpCheck(HttpCheckConfig(kind="http", url=url, expect_body="good")).check(2)).ok
    bad_body = await HttpCheck(HttpCheckConfig(kind="http", url=url, expect_body="great")).check(2)
    assert bad_body.status is Status.NOT_SERVING and "great" in bad_body.message
    server.close()
    server, port = await _http_server(503, b"")
    result = await HttpCheck(HttpCheckConfig(kind="http", url=f"http://127.0.0.1:{port}/")).check(2)
    assert result.status is Status.NOT_SERVING and "503" in result.message
    server.close()


async def test_exec_check_exit_codes_and_timeout_kills_process(tmp_path: Path) -> None:
    ok = ExecCheck(ExecCheckConfig(kind="exec", argv=[sys.executable, "-c", "pass"]))
    assert (await ok.check(5)).ok
    bad = ExecCheck(ExecCheckConfig(kind="exec", argv=[sys.executable, "-c", "raise SystemExit(3)"]))
    assert "exit 3" in (await bad.check(5)).message
    pidfile = tmp_path / "pid"
    code = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    hung = ExecCheck(ExecCheckConfig(kind="exec", argv=[sys.executable, "-c", code]))
    result = await run_check(hung, 1.0)
    assert result.status is Status.NOT_SERVING and "timed out" in result.message
    assert not pid_alive(int(pidfile.read_text()))
    missing = ExecCheck(ExecCheckConfig(kind="exec", argv=["/nonexistent/prog"]))
    assert "cannot run" in (await missing.check(1)).message


async def test_store_check_read_only(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    absent = await StoreCheck(StoreCheckConfig(kind="store", path=db)).check(1)
    assert absent.status is Status.NOT_SERVING
    assert not db.exists()  # read-only: never creates the store
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE runs (id TEXT)")
    conn.commit()
    conn.close()
    result = await StoreCheck(StoreCheckConfig(kind="store", path=db)).check(1)
    assert result.ok and "1 schema" in result.message
    db.write_bytes(b"this is not a database" * 100)
    assert (await StoreCheck(StoreCheckConfig(kind="store", path=db)).check(1)).status is Status.NOT_SERVING


async def test_store_check_reports_space_and_wal_and_fails_below_the_reserve(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE runs (id TEXT)")
    conn.execute("INSERT INTO runs VALUES ('x')")
    conn.commit()  # the connection stays open: its WAL is not checkpointed away
    try:
        roomy = await StoreCheck(StoreCheckConfig(kind="store", path=db, reserve_mb=0)).check(1)
        assert roomy.ok and "MiB free of" in roomy.message and "WAL" in roomy.message
        label = {"store": str(db)}
        assert REGISTRY.get_sample_value("vigil_store_wal_bytes", label) == wal_bytes(db) > 0
        assert REGISTRY.get_sample_value("vigil_store_free_bytes", label) > 0
        # A reserve larger than any test volume's free space: low, so NOT_SERVING.
        low = await StoreCheck(StoreCheckConfig(kind="store", path=db, reserve_mb=1 << 20)).check(1)
        assert low.status is Status.NOT_SERVING and "store space low" in low.message
        assert REGISTRY.get_sample_value("vigil_store_reserve_bytes", label) == (1 << 20) * (1 << 20)
    finally:
        conn.close()


class _View:
    def __init__(self) -> None:
        self.alive = True

    def liveness(self) -> tuple[bool, str]:
        return self.alive, "running" if self.alive else "exited with code 1"


async def test_process_check() -> None:
    view = _View()
    check = ProcessCheck(view)
    assert (await check.check(1)).ok
    view.alive = False
    assert (await check.check(1)).message == "exited with code 1"


def test_split_address() -> None:
    assert split_address("127.0.0.1:50051") == ("127.0.0.1", 50051)
    assert split_address("[::1]:80") == ("::1", 80)
    with pytest.raises(ValueError, match="host:port"):
        split_address("nope")


async def test_grpc_checks_of_one_target_share_one_channel(health_server) -> None:  # type: ignore[no-untyped-def]
    addr, health, _ = health_server
    await health.set("other", NOT_SERVING)
    channels = SharedChannels()
    a = GrpcHealthCheck(GrpcCheckConfig(kind="grpc", address=addr, service="svc"), channels)
    b = GrpcHealthCheck(GrpcCheckConfig(kind="grpc", address=addr, service="other"), channels)
    elsewhere = GrpcHealthCheck(GrpcCheckConfig(kind="grpc", address="127.0.0.1:1"), channels)
    assert (await a.check(1.0)).status is Status.SERVING
    assert (await b.check(1.0)).status is Status.NOT_SERVING  # each asks for its own service
    await elsewhere.check(0.2)
    assert len(channels) == 2  # one per target, not one per check
    await a.close()
    assert (await b.check(1.0)).status is Status.NOT_SERVING  # b's channel outlives a's close
    await a.close()  # idempotent: releases nothing twice
    await b.close()
    await elsewhere.close()
    assert len(channels) == 0
