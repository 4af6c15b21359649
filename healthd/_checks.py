"""Check kinds: each a small object whose ``check()`` returns a `CheckResult`.

A check never raises for a failing target: any failure becomes NOT_SERVING with a message.
Timeouts are enforced by `run_check` (a timeout is a failure); checks also pass their
timeout to the underlying call (gRPC deadline, socket timeout) so they don't linger.
`run_check` is also the backstop for a check with a bug: whatever it raises is a
NOT_SERVING result naming the exception, because an exception escaping into the scheduler
would end that check's task and make the watchdog restart the whole pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import signal
import sqlite3
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Protocol

import grpc
from grpc_health.v1 import health_pb2 as _hpb
from grpc_health.v1 import health_pb2_grpc as _hpb_grpc

from healthd._channels import SharedChannels
from healthd._config import (
    CheckConfig,
    ClientTLS,
    ExecCheckConfig,
    GrpcCheckConfig,
    HttpCheckConfig,
    ProcessCheckConfig,
    StoreCheckConfig,
    TcpCheckConfig,
)
from healthd._process import signal_group
from healthd._store_metrics import STORE_FREE_BYTES, STORE_RESERVE_BYTES, STORE_WAL_BYTES
from healthd._types import CheckResult, Status
from services.common import VolumeSpace, get_logger, wal_bytes

_log = get_logger("vigil.healthd.checks")

_FROM_PROTO = {
    _hpb.HealthCheckResponse.SERVING: Status.SERVING,
    _hpb.HealthCheckResponse.NOT_SERVING: Status.NOT_SERVING,
}


class Check(Protocol):
    """A check: one async probe of a target."""

    async def check(self, timeout_s: float) -> CheckResult:
        """Probe the target once; never raises for a failing target."""
        ...

    async def close(self) -> None:
        """Release cached resources (channels)."""
        ...


class ProcessView(Protocol):
    """What the process check needs to know about a supervised child."""

    def liveness(self) -> tuple[bool, str]:
        """(alive, description) of the child right now."""
        ...


async def run_check(check: Check, timeout_s: float) -> CheckResult:
    """Run ``check`` with a hard timeout; a timeout, or anything the check raises, is NOT_SERVING.

    Never raises (except `asyncio.CancelledError`, which is not an `Exception`): the
    scheduler's task for this check must outlive any one run.
    """
    start = time.monotonic()
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that
    # arrives as the inner call completes, and a cancelled scheduler task would run on forever.
    try:
        async with asyncio.timeout(timeout_s):
            return await check.check(timeout_s)
    except TimeoutError:
        return CheckResult(Status.NOT_SERVING, time.monotonic() - start, f"timed out after {timeout_s:g}s")
    except Exception as exc:  # a check's bug: reported as this check failing, with its traceback
        _log.warning("check %s raised instead of returning a result", type(check).__name__, exc_info=True)
        return CheckResult(Status.NOT_SERVING, time.monotonic() - start, f"check raised {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    """``Type: message`` (message clipped) for a check result people read."""
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


class GrpcHealthCheck:
    """grpc.health.v1 Check over a cached channel, plus a Watch stream for death events."""

    def __init__(self, cfg: GrpcCheckConfig, channels: SharedChannels | None = None) -> None:
        self._cfg = cfg
        self._channels = channels if channels is not None else SharedChannels()
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> _hpb_grpc.HealthStub:
        # The channel is acquired lazily and kept: reconnects are gRPC's job, not ours.
        if self._channel is None:
            self._channel = self._channels.acquire(self._cfg.address, self._cfg.tls)
        return _hpb_grpc.HealthStub(self._channel)

    async def check(self, timeout_s: float) -> CheckResult:
        start = time.monotonic()
        try:
            resp = await self._stub().Check(
                _hpb.HealthCheckRequest(service=self._cfg.service), timeout=timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            msg = f"{exc.code().name}: {exc.details()}"
            return CheckResult(Status.NOT_SERVING, time.monotonic() - start, msg)
        status = _FROM_PROTO.get(resp.status, Status.NOT_SERVING)
        name = _hpb.HealthCheckResponse.ServingStatus.Name(resp.status)
        return CheckResult(status, time.monotonic() - start, name)

    async def watch(self, retry_s: float = 0.2) -> AsyncIterator[CheckResult]:
        """Yield a result for every status the server pushes; forever, reconnecting.

        When the stream breaks (the server died), yields a decisive NOT_SERVING at once,
        then retries every ``retry_s`` (waiting for the channel to be ready first).
        """
        while True:
            try:
                call = self._stub().Watch(
                    _hpb.HealthCheckRequest(service=self._cfg.service), wait_for_ready=True
                )
                async for resp in call:
                    status = _FROM_PROTO.get(resp.status, Status.NOT_SERVING)
                    name = _hpb.HealthCheckResponse.ServingStatus.Name(resp.status)
                    yield CheckResult(status, 0.0, f"watch: {name}", decisive=status is not Status.SERVING)
                yield CheckResult(Status.NOT_SERVING, 0.0, "watch: stream ended", decisive=True)
            except grpc.aio.AioRpcError as exc:
                if exc.code() is grpc.StatusCode.UNIMPLEMENTED:
                    return  # the server has no Watch: polling alone must do
                yield CheckResult(Status.NOT_SERVING, 0.0, f"watch: {exc.code().name}", decisive=True)
            await asyncio.sleep(retry_s)

    async def close(self) -> None:
        if self._channel is not None:
            self._channel = None
            await self._channels.release(self._cfg.address, self._cfg.tls)


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) to (host, port)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address must be host:port, got {address!r}")
    return host.strip("[]"), int(port)


class TcpCheck:
    """TCP connect; success when the connection is accepted."""

    def __init__(self, cfg: TcpCheckConfig) -> None:
        self._host, self._port = split_address(cfg.address)

    async def check(self, timeout_s: float) -> CheckResult:
        start = time.monotonic()
        try:
            _, writer = await asyncio.open_connection(self._host, self._port)
        except OSError as exc:
            return CheckResult(Status.NOT_SERVING, time.monotonic() - start, exc.strerror or str(exc))
        writer.close()
        # The target accepted the connection, which is all this check asks; a reset while we
        # hang up (a peer that closes with RST) does not undo that.
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return CheckResult(Status.SERVING, time.monotonic() - start, "connected")

    async def close(self) -> None:
        return None


class HttpCheck:
    """HTTP GET in a worker thread (urllib honours the timeout itself)."""

    def __init__(self, cfg: HttpCheckConfig) -> None:
        self._cfg = cfg
        self._ctx: ssl.SSLContext | None = None
        if cfg.url.startswith("https://"):
            tls = cfg.tls or ClientTLS()
            self._ctx = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
            if tls.cert_file is not None:
                self._ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)

    def _get(self, timeout_s: float) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self._cfg.url, timeout=timeout_s, context=self._ctx) as resp:
                return resp.status, resp.read(1 << 20)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(1 << 20)

    async def check(self, timeout_s: float) -> CheckResult:
        start = time.monotonic()
        try:
            code, body = await asyncio.to_thread(self._get, timeout_s)
        # URLError is an OSError; a reply that is not HTTP (BadStatusLine, LineTooLong, bad
        # chunking) is an HTTPException; a malformed header value can surface as ValueError.
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return CheckResult(Status.NOT_SERVING, time.monotonic() - start, f"GET failed: {_describe(exc)}")
        latency = time.monotonic() - start
        if code != self._cfg.expect_status:
            return CheckResult(
                Status.NOT_SERVING, latency, f"status {code}, expected {self._cfg.expect_status}"
            )
        if self._cfg.expect_body is not None and self._cfg.expect_body.encode() not in body:
            return CheckResult(Status.NOT_SERVING, latency, f"body lacks {self._cfg.expect_body!r}")
        return CheckResult(Status.SERVING, latency, f"status {code}")

    async def close(self) -> None:
        return None


class ExecCheck:
    """Runs a command in its own process group; success is the expected exit code."""

    def __init__(self, cfg: ExecCheckConfig) -> None:
        self._cfg = cfg

    async def check(self, timeout_s: float) -> CheckResult:
        code, latency, message = await run_command(self._cfg.argv, timeout_s)
        ok = code == self._cfg.expect_exit
        return CheckResult(Status.SERVING if ok else Status.NOT_SERVING, latency, message)

    async def close(self) -> None:
        return None


async def run_command(argv: list[str], timeout_s: float) -> tuple[int | None, float, str]:
    """Run ``argv`` to completion or kill its whole group at ``timeout_s``.

    Returns (exit code or None if it could not run / timed out, latency, message).
    Cancellation (an outer timeout) also kills the group: a check never leaks processes.
    """
    start = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True
        )
    except OSError as exc:
        return None, time.monotonic() - start, f"cannot run {argv[0]}: {exc.strerror}"
    try:
        async with asyncio.timeout(timeout_s):
            _, err = await proc.communicate()
    except (TimeoutError, asyncio.CancelledError) as exc:
        signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        return None, time.monotonic() - start, f"timed out after {timeout_s:g}s"
    tail = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
    message = f"exit {proc.returncode}" + (f": {tail[0][:200]}" if tail else "")
    return proc.returncode, time.monotonic() - start, message


class ProcessCheck:
    """SERVING while the supervised child is alive."""

    def __init__(self, view: ProcessView) -> None:
        self._view = view

    async def check(self, timeout_s: float) -> CheckResult:
        alive, description = self._view.liveness()
        return CheckResult(Status.SERVING if alive else Status.NOT_SERVING, 0.0, description)

    async def close(self) -> None:
        return None


class StoreCheck:
    """Opens the SQLite store read-only (never creates it), runs a trivial query and measures
    the free space of its volume and the size of its WAL (message and ``vigil_store_*`` gauges).

    Below the reserve it is NOT_SERVING: the workflow service refuses new runs then, and a
    component that ``depends_on`` this one is reported DEPENDENCY_DOWN instead of being
    restarted (a restart frees no space: that is how a full disk became a crash loop).
    """

    def __init__(self, cfg: StoreCheckConfig) -> None:
        self._path = cfg.path
        self._space = VolumeSpace(
            cfg.path, reserve_mb=cfg.reserve_mb, reserve_percent=cfg.reserve_percent, ttl_s=0
        )
        self._label = str(cfg.path)

    def _query(self, timeout_s: float) -> int:
        uri = f"file:{self._path.resolve()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=timeout_s, check_same_thread=False)
        try:
            return int(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
        finally:
            conn.close()

    async def check(self, timeout_s: float) -> CheckResult:
        start = time.monotonic()
        space, wal = await asyncio.to_thread(lambda: (self._space.sample(), wal_bytes(self._path)))
        STORE_FREE_BYTES.labels(self._label).set(space.free_bytes)
        STORE_RESERVE_BYTES.labels(self._label).set(space.reserve_bytes)
        STORE_WAL_BYTES.labels(self._label).set(wal)
        figures = f"{space.describe()}, WAL {wal / (1 << 20):.1f} MiB"
        try:
            tables = await asyncio.to_thread(self._query, timeout_s)
        except sqlite3.Error as exc:
            return CheckResult(Status.NOT_SERVING, time.monotonic() - start, f"store: {exc} ({figures})")
        if space.low:
            return CheckResult(Status.NOT_SERVING, time.monotonic() - start, f"store space low: {figures}")
        return CheckResult(
            Status.SERVING, time.monotonic() - start, f"store ok ({tables} schema objects; {figures})"
        )

    async def close(self) -> None:
        return None


def build_check(
    cfg: CheckConfig, process: ProcessView | None = None, channels: SharedChannels | None = None
) -> Check:
    """The check object for a check config; ``process`` is the component's supervised child;
    gRPC checks share the channels of ``channels`` (default: a channel of their own)."""
    if isinstance(cfg, GrpcCheckConfig):
        return GrpcHealthCheck(cfg, channels)
    if isinstance(cfg, TcpCheckConfig):
        return TcpCheck(cfg)
    if isinstance(cfg, HttpCheckConfig):
        return HttpCheck(cfg)
    if isinstance(cfg, ExecCheckConfig):
        return ExecCheck(cfg)
    if isinstance(cfg, StoreCheckConfig):
        return StoreCheck(cfg)
    if isinstance(cfg, ProcessCheckConfig):
        if process is None:
            raise ValueError("a process check needs a supervised process")
        return ProcessCheck(process)
    raise TypeError(f"unknown check config {type(cfg).__name__}")
