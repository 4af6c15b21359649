"""A real Vigil server for replica tests, configured like the services: env ``VIGIL_CHILD_*``.

``VIGIL_CHILD_SERVICE`` names the health service it reports SERVING; ``VIGIL_CHILD_SERVER__*``
are `ServerConfig` settings (healthd passes a replica's port, reuse_port, health_port and index
there). A bad value exits 2 with the config error on stderr, as the services do.
"""

from __future__ import annotations

import sys

from grpc_health.v1 import health_pb2 as _hpb

from services.common import ConfigModel, ServerConfig, VigilServer, run_main


class ChildConfig(ConfigModel):
    server: ServerConfig = ServerConfig()
    service: str = "svc"


async def build(cfg: ChildConfig) -> VigilServer:
    server = VigilServer(cfg.server, "replica")
    await server.health.set(cfg.service, _hpb.HealthCheckResponse.SERVING)
    return server


if __name__ == "__main__":
    sys.exit(
        run_main(sys.argv[1:], model=ChildConfig, env_prefix="VIGIL_CHILD_", build=build, prog="replica")
    )
