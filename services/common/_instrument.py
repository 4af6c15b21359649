"""One call per process to wire tracing, metrics and log correlation into a server.

obs = Instrumentation("workflow", config.server)
server = VigilServer(config.server, "workflow", interceptors=obs.server_interceptors)
obs.attach(server)   # /metrics endpoint, telemetry flush on graceful shutdown
channel = grpc.aio.insecure_channel(addr, interceptors=client_interceptors())
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import grpc
from prometheus_client.registry import Collector

from services.common._config import ServerConfig
from services.common._logging import get_logger
from services.common._logs import install_log_hooks
from services.common._metrics import MetricsInterceptor, MetricsServer
from services.common._telemetry import (
    metrics_push_wanted,
    server_interceptors,
    setup_tracing,
    shutdown_tracing,
)

if TYPE_CHECKING:
    from services.common._otlp_metrics import MetricsPusher
    from services.common._server import VigilServer

__all__ = ["Instrumentation"]

_log = get_logger("vigil.telemetry")


class Instrumentation:
    """Tracing (when OTEL_* asks), RPC metrics and log enrichment for one process.

    Args:
        name: Service name for traces (``OTEL_SERVICE_NAME`` overrides it).
        config: The server settings; ``metrics_port`` set means serve ``/metrics``.
        metrics: Count RPCs; off only for benchmarks that measure the bare server.
        environ: The ``OTEL_*`` settings for the OTLP metrics push; default the process
            environment, read here once at start-up and handed to the pusher. Tracing is
            left to the OpenTelemetry SDK, which reads the process environment itself
            (endpoint, headers, TLS), so its on/off decision reads the same place.
        untraced: Streaming methods whose messages carry their calls' own trace context,
            traced per call by the handler instead of one span per stream
            (`server_interceptors`).
    """

    def __init__(
        self,
        name: str,
        config: ServerConfig,
        *,
        metrics: bool = True,
        environ: Mapping[str, str] | None = None,
        untraced: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.config = config
        self.tracing = setup_tracing(name)
        install_log_hooks()
        interceptors: list[grpc.aio.ServerInterceptor] = [*server_interceptors(untraced)]
        if metrics:
            interceptors.append(MetricsInterceptor())
        self.server_interceptors: tuple[grpc.aio.ServerInterceptor, ...] = tuple(interceptors)
        self.metrics_server: MetricsServer | None = None
        env = os.environ if environ is None else environ
        self.pusher: MetricsPusher | None = None
        if metrics_push_wanted(env):
            # Imported only when pushing: the OTLP protos cost resident memory in every process.
            from services.common._otlp_metrics import MetricsPusher

            self.pusher = MetricsPusher(name, env)

    def attach(self, server: VigilServer, collectors: Iterable[Collector] = ()) -> None:
        """Start ``/metrics`` (if configured; ``collectors`` added to it) and the OTLP metrics
        push (if OTEL_* asks; call from the event loop), and flush telemetry when ``server``
        shuts down."""
        if self.config.metrics_port is not None and self.metrics_server is None:
            try:
                self.metrics_server = MetricsServer(self.config.host, self.config.metrics_port, collectors)
            except OSError as exc:
                # Serving RPCs matters more than being scraped (a second replica, or another
                # stack, on the same metrics port): say so loudly and run without /metrics.
                _log.error(
                    "%s metrics disabled: cannot bind %s:%d (%s)",
                    self.name,
                    self.config.host,
                    self.config.metrics_port,
                    exc.strerror or exc,
                )
            else:
                _log.info(
                    "%s metrics on http://%s:%d/metrics",
                    self.name,
                    self.config.host,
                    self.metrics_server.port,
                    extra={"metrics_port": self.metrics_server.port},
                )
        if self.pusher is not None:
            self.pusher.start()
        server.on_shutdown(self.close)

    async def close(self) -> None:
        """Stop ``/metrics`` and export queued spans (idempotent)."""
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None
        if self.pusher is not None:
            await self.pusher.close()
            self.pusher = None
        await shutdown_tracing()
