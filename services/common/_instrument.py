"""One call per process to wire tracing, metrics and log correlation into a server.

obs = Instrumentation("workflow", config.server)
server = VigilServer(config.server, "workflow", interceptors=obs.server_interceptors)
obs.attach(server)   # /metrics endpoint, telemetry flush on graceful shutdown
channel = grpc.aio.insecure_channel(addr, interceptors=client_interceptors())
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from services.common._config import ServerConfig
from services.common._logging import get_logger
from services.common._logs import install_log_hooks
from services.common._metrics import MetricsInterceptor, MetricsServer
from services.common._telemetry import server_interceptors, setup_tracing, shutdown_tracing

if TYPE_CHECKING:
    from services.common._server import VigilServer

__all__ = ["Instrumentation"]

_log = get_logger("vigil.telemetry")


class Instrumentation:
    """Tracing (when OTEL_* asks), RPC metrics and log enrichment for one process.

    Args:
        name: Service name for traces (``OTEL_SERVICE_NAME`` overrides it).
        config: The server settings; ``metrics_port`` set means serve ``/metrics``.
        metrics: Count RPCs; off only for benchmarks that measure the bare server.
    """

    def __init__(self, name: str, config: ServerConfig, *, metrics: bool = True) -> None:
        self.name = name
        self.config = config
        self.tracing = setup_tracing(name)
        install_log_hooks()
        interceptors: list[grpc.aio.ServerInterceptor] = [*server_interceptors()]
        if metrics:
            interceptors.append(MetricsInterceptor())
        self.server_interceptors: tuple[grpc.aio.ServerInterceptor, ...] = tuple(interceptors)
        self.metrics_server: MetricsServer | None = None

    def attach(self, server: VigilServer) -> None:
        """Start ``/metrics`` (if configured) and flush telemetry when ``server`` shuts down."""
        if self.config.metrics_port is not None and self.metrics_server is None:
            self.metrics_server = MetricsServer(self.config.host, self.config.metrics_port)
            _log.info(
                "%s metrics on http://%s:%d/metrics",
                self.name,
                self.config.host,
                self.metrics_server.port,
                extra={"metrics_port": self.metrics_server.port},
            )
        server.on_shutdown(self.close)

    async def close(self) -> None:
        """Stop ``/metrics`` and export queued spans (idempotent)."""
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None
        await shutdown_tracing()
