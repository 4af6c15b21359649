"""Wiring: engine + gRPC server (grpc.health.v1 and HealthDaemon), start-up and shutdown order.

Start: publish the initial statuses, bind the server, then start checks and children (so a
server that cannot bind never leaves children behind). Stop (SIGTERM/Ctrl-C): overall
NOT_SERVING, stop checks and children (dependents first), then drain and stop the server.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from functools import partial
from pathlib import Path

from healthd._config import HealthdConfig, Mode
from healthd._engine import HealthEngine
from healthd._names import resolve
from healthd._service import AdminGate, HealthBridge, HealthDaemonService
from healthd._snapshot import Snapshot
from healthd._supervisor import LineSink
from healthd._telemetry import observe_snapshot
from healthd.alerts import Alerting
from healthd.dashboard import DashboardApi, DashboardModel, DashboardServer, RunsReader
from services.common import (
    Clock,
    ConfigError,
    Instrumentation,
    SchemaTooNew,
    VigilServer,
    configure_logging,
    get_logger,
    load_config,
    settle_heap,
)
from services.security import AuditLog, AuditStoreError, open_audit_log
from vigil.healthd.v1 import healthd_pb2_grpc as _pb_grpc

ENV_PREFIX = "VIGIL_HEALTHD_"
SERVICE_NAME = "vigil.healthd.v1.HealthDaemon"

_log = get_logger("vigil.healthd")


def summary_line(snap: Snapshot) -> str:
    """One-line live status: system verdict, then each component."""
    system = snap.system
    parts = [f"{system.status.value} score={system.score} level={system.level.name}"]
    if snap.liveness.value != "SERVING":
        parts.append(f"liveness NOT_SERVING ({snap.liveness_reason})")
    for view in snap.components:
        h = view.health
        detail = f" ({h.reason.value.lower()}: {h.cause})" if h.cause else ""
        parts.append(f"{h.name}={h.status.value}/{view.heal_state.value}{detail}")
    return " | ".join(parts)


class Daemon:
    """A running healthd: engine, health bridge and gRPC server."""

    def __init__(
        self, config: HealthdConfig, *, clock: Clock | None = None, sink: LineSink | None = None
    ) -> None:
        self.config = config
        self.engine = HealthEngine(config, clock=clock, sink=sink)
        self.telemetry, self.server = grpc_server(config)
        self.telemetry.attach(self.server)
        self.engine.add_listener(observe_snapshot)
        self.alerting = Alerting(config.alerts, self.engine.snapshot)
        gate = AdminGate(config.auth)
        self.audit = _open_audit(config)
        service = HealthDaemonService(self.engine, config, gate, self.audit)
        board = config.dashboard
        runs = RunsReader(board) if board.workflow_address else None
        model = DashboardModel(self.engine, self.alerting, runs_view=runs is not None)
        names = [c.name for c in config.components]
        self.dashboard = DashboardServer(
            model,
            config.http.host,
            config.http.port,
            api=DashboardApi(service.operator, gate, runs, model.notify, partial(resolve, names=names)),
            allowed_hosts=board.hosts,
        )
        self.alerting.on_change = self.dashboard.model.notify
        self.bridge = HealthBridge(self.engine, self.server.health)
        self.server.add_servicer(_pb_grpc.add_HealthDaemonServicer_to_server, service, SERVICE_NAME)
        self._last_summary = ""
        if config.mode is Mode.SUPERVISOR:
            self.engine.add_listener(self._print_summary)

    def _print_summary(self, snap: Snapshot) -> None:
        line = summary_line(snap)
        if line != self._last_summary:
            self._last_summary = line
            _log.info("status: %s", line)

    async def start(self) -> int:
        """Bind and serve, then start checks and children; returns the gRPC port."""
        await self.bridge.start()
        port = await self.server.start()
        try:
            await self.dashboard.start()
            self.alerting.sender.external_url = self.dashboard.url
        except OSError as exc:
            # Health over gRPC is what probes and the services rely on; the dashboard is not.
            _log.error(
                "dashboard disabled: cannot bind %s:%s (%s)", self.config.http.host, self.dashboard.port, exc
            )
        self.alerting.start()
        await self.engine.start()
        return port

    async def stop(self) -> None:
        """Children first (dependents first), then healthd's own server."""
        await self.engine.stop()
        await self.alerting.stop()
        await self.dashboard.stop()
        await self.bridge.stop()
        await self.server.stop()
        if self.audit is not None:
            self.audit.close()


def grpc_server(config: HealthdConfig) -> tuple[Instrumentation, VigilServer]:
    """healthd's instrumentation and gRPC server (bench.servers.health_server serves this too,
    so the Check benchmark measures what healthd runs). RPC metrics stay on: healthd's HTTP
    port always serves ``/metrics``."""
    telemetry = Instrumentation("healthd", config.server)
    return telemetry, VigilServer(config.server, "healthd", interceptors=telemetry.server_interceptors)


def _open_audit(config: HealthdConfig) -> AuditLog | None:
    """healthd's audit log (None when not configured).

    Raises:
        ValueError: naming ``audit`` when the key or the database is unusable.
    """
    if config.audit is None:
        return None
    try:
        return open_audit_log(config.audit, name="healthd")
    except (ValueError, OSError, sqlite3.Error, SchemaTooNew, AuditStoreError) as exc:
        raise ValueError(f"audit: {exc}") from None


def serve(config_path: Path | None) -> int:
    """Run the daemon until SIGTERM/SIGINT. Exit codes: 0 clean, 1 cannot start, 2 bad config."""
    try:
        config = load_config(HealthdConfig, config_path, env_prefix=ENV_PREFIX)
    except ConfigError as exc:
        print(f"healthd: config error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.server.log_level)

    async def run() -> int:
        try:
            daemon = Daemon(config)
        except ValueError as exc:  # e.g. an unreadable check address
            print(f"healthd: config error: {exc}", file=sys.stderr)
            return 2
        # Handlers first: a signal during start-up must still stop the children it started.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # Constructed, nothing started yet: its objects out of every later full collection (_heap).
        settle_heap()
        try:
            await daemon.start()
        except (OSError, RuntimeError) as exc:  # grpc reports a port it cannot bind as RuntimeError
            _log.error("healthd cannot start: %s", exc)
            await daemon.stop()
            return 1
        await stop.wait()
        _log.info("healthd stopping: children first")
        await daemon.stop()
        return 0

    return asyncio.run(run())
