"""Server bootstrap shared by every Vigil process: `VigilServer` and `run_main`.

Lifecycle of a `VigilServer`:

    created --start()--> serving --stop()/SIGTERM--> draining --> stopped

Graceful shutdown order (ARCHITECTURE.md, Processes): every grpc.health.v1 status turns NOT_SERVING
(watchers are told, then their streams end), new RPCs are refused, in-flight RPCs get
``grace_period_s`` to finish and are cancelled after it, then the ``on_shutdown``
hooks run (close stores, flush telemetry) and `wait()` returns.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2_grpc as _hpb_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from pydantic import BaseModel

from services.common._config import ClientTLSConfig, ConfigError, ServerConfig, TLSConfig, load_config
from services.common._health import HEALTH_SERVICE_NAME, HealthServicer
from services.common._heap import settle_heap
from services.common._interceptors import ErrorMapping, MethodWrapper, Registrar, chain, grpc_receive_limit
from services.common._logging import configure_logging, get_logger

__all__ = [
    "SUPERVISOR_PID_ENV",
    "VigilServer",
    "channel_credentials",
    "open_blocking_channel",
    "open_client_channel",
    "run_main",
    "server_credentials",
]

_log = get_logger("vigil.server")
M = TypeVar("M", bound=BaseModel)

_SERVING = 1  # grpc.health.v1 HealthCheckResponse.SERVING


def _read(path: Path, field: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), field, f"cannot read: {exc.strerror}") from None


def channel_credentials(tls: ClientTLSConfig) -> grpc.ChannelCredentials:
    """Client TLS credentials from PEM files (a client certificate when set: mTLS)."""
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca_file, "tls.ca_file") if tls.ca_file else None,
        private_key=_read(tls.key_file, "tls.key_file") if tls.key_file else None,
        certificate_chain=_read(tls.cert_file, "tls.cert_file") if tls.cert_file else None,
    )


def open_client_channel(
    address: str,
    tls: ClientTLSConfig | None,
    *,
    options: Sequence[tuple[str, Any]] = (),
    interceptors: Sequence[grpc.aio.ClientInterceptor] | None = None,
) -> grpc.aio.Channel:
    """An aio channel to ``address``: plaintext when ``tls`` is None, else TLS/mTLS as it says."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=list(options), interceptors=interceptors)
    return grpc.aio.secure_channel(
        address, channel_credentials(tls), options=_tls_options(tls, options), interceptors=interceptors
    )


def open_blocking_channel(
    address: str, tls: ClientTLSConfig | None, *, options: Sequence[tuple[str, Any]] = ()
) -> grpc.Channel:
    """`open_client_channel` for synchronous callers (the command-line clients)."""
    if tls is None:
        return grpc.insecure_channel(address, options=list(options))
    return grpc.secure_channel(address, channel_credentials(tls), options=_tls_options(tls, options))


def _tls_options(tls: ClientTLSConfig, options: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    if tls.server_name:
        return [*options, ("grpc.ssl_target_name_override", tls.server_name)]
    return list(options)


def server_credentials(tls: TLSConfig) -> grpc.ServerCredentials:
    """Server TLS credentials from PEM files; client certificates required when a CA is set."""
    key, cert = _read(tls.key_file, "tls.key_file"), _read(tls.cert_file, "tls.cert_file")
    ca = _read(tls.client_ca_file, "tls.client_ca_file") if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


class VigilServer:
    """A grpc.aio server with health (Check/Watch/List), reflection, error mapping and
    graceful shutdown.

    Args:
        config: Bind address, limits, TLS and grace period.
        name: Short process name used in logs ("workflow", "security", "healthd").
        interceptors: Extra server interceptors (auth, tracing, metrics), outermost first;
            error mapping is always innermost. `MethodWrapper`s among them wrap each
            handler once at registration; others run as gRPC interceptors, outside those.
        health: Use this health servicer instead of a fresh one (healthd shares its own).
    """

    def __init__(
        self,
        config: ServerConfig,
        name: str,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        health: HealthServicer | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self.health = health or HealthServicer()
        self.port: int | None = None
        self.stopping = asyncio.Event()
        """Set when shutdown begins; long-lived streams should end when they see it."""
        self._stopped = asyncio.Event()
        self._service_names: list[str] = []
        self._hooks: list[Callable[[], Awaitable[Any]]] = []
        # Method wrappers (tracing, metrics) and error mapping wrap each handler once, at
        # registration (see `_interceptors`); only other interceptors run per call.
        wrappers = [i for i in interceptors if isinstance(i, MethodWrapper)]
        # SO_REUSEPORT only when asked (replicas): otherwise a port in use must fail the start,
        # not silently share traffic with a stranger (grpc enables it by default on Linux).
        self._server = grpc.aio.server(
            interceptors=[i for i in interceptors if not isinstance(i, MethodWrapper)] or None,
            options=[
                # The documented limit is checked by ErrorMapping (INVALID_ARGUMENT naming it).
                ("grpc.max_receive_message_length", grpc_receive_limit(config.max_message_bytes)),
                ("grpc.max_send_message_length", config.max_message_bytes),
                ("grpc.so_reuseport", 1 if config.reuse_port else 0),
            ],
            maximum_concurrent_rpcs=config.max_concurrent_rpcs,
        )
        self._registrar = Registrar(self._server, chain([*wrappers, ErrorMapping(config.max_message_bytes)]))
        _hpb_grpc.add_HealthServicer_to_server(self.health, self._registrar)  # type: ignore[arg-type]
        # The private health port: this process's own statuses, on a port no replica shares.
        self._health_server: grpc.aio.Server | None = None
        self.health_port: int | None = None
        if config.health_port is not None:
            self._health_server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
            _hpb_grpc.add_HealthServicer_to_server(self.health, self._health_server)

    @property
    def grpc_server(self) -> grpc.aio.Server:
        return self._server

    @property
    def address(self) -> str:
        """host:port clients should dial (valid after start)."""
        host = self.config.host
        if host in ("0.0.0.0", "[::]", "::"):
            host = "127.0.0.1"
        return f"{host}:{self.port}"

    def add_servicer(
        self, add_fn: Callable[[Any, grpc.aio.Server], None], servicer: Any, full_name: str
    ) -> None:
        """Register a generated-stub servicer; it gets reflection and a health status."""
        add_fn(servicer, self._registrar)
        self._service_names.append(full_name)

    def on_shutdown(self, hook: Callable[[], Awaitable[Any]]) -> None:
        """Run ``hook`` after RPCs have drained during shutdown (in registration order)."""
        self._hooks.append(hook)

    async def start(self) -> int:
        """Bind, start serving, mark every registered service SERVING; returns the port."""
        names = [*self._service_names, HEALTH_SERVICE_NAME, reflection.SERVICE_NAME]
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            reflection.aio.ReflectionServicer(names),  # what enable_server_reflection picks for aio
            self._registrar,  # type: ignore[arg-type]
        )
        bind = f"{self.config.host}:{self.config.port}"
        if self.config.tls is not None:
            self.port = self._server.add_secure_port(bind, server_credentials(self.config.tls))
        else:
            self.port = self._server.add_insecure_port(bind)
        if not self.port:
            raise OSError(f"cannot bind {bind}")
        if self._health_server is not None:
            health_bind = f"{self.config.host}:{self.config.health_port}"
            self.health_port = self._health_server.add_insecure_port(health_bind)
            if not self.health_port:
                raise OSError(f"cannot bind the health port {health_bind}")
            await self._health_server.start()
        await self._server.start()
        for service in ("", *self._service_names):
            if self.health.get(service) is None:
                await self.health.set(service, _SERVING)
        extra = {"port": self.port, "health_port": self.health_port, "replica": self.config.replica}
        replica = (
            f" (replica {self.config.replica}, health port {self.health_port})" if self.config.replica else ""
        )
        _log.info("%s listening on %s%s", self.name, self.address, replica, extra=extra)
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """Graceful shutdown (idempotent): NOT_SERVING, refuse new RPCs, drain, run hooks."""
        if self.stopping.is_set():
            await self._stopped.wait()
            return
        self.stopping.set()
        grace = self.config.grace_period_s if grace is None else grace
        _log.info("%s shutting down (grace %.1fs)", self.name, grace)
        await self.health.enter_graceful_shutdown()
        await asyncio.sleep(0)  # let watchers receive NOT_SERVING before their streams end
        stops = [self._server.stop(grace)]
        if self._health_server is not None:
            stops.append(self._health_server.stop(0))
        await asyncio.gather(*stops)
        for hook in self._hooks:
            try:
                await hook()
            except Exception:
                _log.exception("shutdown hook %r failed", hook)
        self._stopped.set()
        _log.info("%s stopped", self.name)

    async def wait(self) -> None:
        """Return once the server has stopped."""
        await self._stopped.wait()


SUPERVISOR_PID_ENV = "VIGIL_SUPERVISOR_PID"


def _supervisor_pid(environ: Mapping[str, str]) -> int | None:
    """The pid in ``VIGIL_SUPERVISOR_PID``, or None when this process is not supervised.

    healthd sets it for its children (it is not operator config, so it is not part of a
    config model); anything but ASCII decimal digits counts as unset.
    """
    raw = environ.get(SUPERVISOR_PID_ENV, "")
    return int(raw) if raw.isascii() and raw.isdigit() else None


async def _stop_when_orphaned(server: VigilServer, supervisor: int, interval_s: float = 0.5) -> None:
    """Shut ``server`` down gracefully once ``supervisor`` is no longer our parent.

    healthd sets VIGIL_SUPERVISOR_PID only for children it cannot adopt after a restart (no
    ``run_dir``: tests). If that healthd is killed -9, the children (in their own sessions,
    so no signal reaches them) would keep their ports forever. A healthd with a ``run_dir``
    does not set it: its children outlive it and the next healthd adopts them. Polling getppid is the
    thread-safe alternative to prctl(PR_SET_PDEATHSIG) in a preexec_fn, which is unsafe
    with grpc's threads.
    """
    # No event exists for "parent died" without prctl; a cheap syscall twice a second is it.
    while os.getppid() == supervisor:  # noqa: ASYNC110
        await asyncio.sleep(interval_s)
    _log.warning("supervisor (pid %d) is gone; shutting down", supervisor)
    await server.stop()


def _parse_args(prog: str, argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--config", type=Path, help="YAML config file (settings also from env)")
    return parser.parse_args(argv)


def run_main(
    argv: Sequence[str] | None,
    *,
    model: type[M],
    env_prefix: str,
    build: Callable[[M], Awaitable[VigilServer]],
    prog: str,
) -> int:
    """Entry point of a server process; returns the exit code.

    Exit codes: 0 after a graceful shutdown, 2 for a bad config (one line on stderr
    naming file, field and value), 1 if the server cannot start.
    """
    args = _parse_args(prog, argv)
    try:
        config = load_config(model, args.config, env_prefix=env_prefix)
    except ConfigError as exc:
        print(f"{prog}: config error: {exc}", file=sys.stderr)
        return 2
    # Read once with the config: the rest of the process gets the value, not the environment.
    supervisor = _supervisor_pid(os.environ)
    server_cfg = getattr(config, "server", None)
    configure_logging(server_cfg.log_level if isinstance(server_cfg, ServerConfig) else "INFO")

    async def _serve() -> int:
        try:
            settle_heap()  # the imports' objects out of every later full collection (_heap)
            server = await build(config)
            await server.start()
        except ConfigError as exc:
            print(f"{prog}: config error: {exc}", file=sys.stderr)
            return 2
        except (OSError, RuntimeError) as exc:  # grpc raises RuntimeError when it cannot bind
            _log.error("%s cannot start: %s", prog, exc)
            return 1
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(server.stop()))
        watch = None if supervisor is None else asyncio.ensure_future(_stop_when_orphaned(server, supervisor))
        await server.wait()
        if watch is not None:
            watch.cancel()
        return 0

    return asyncio.run(_serve())
