"""Entry point: `python -m healthd` serves vigil.healthd.v1.HealthDaemon.

The foundation serves health, reflection and the contract; RPCs not yet built
answer UNIMPLEMENTED (the generated base servicer), never a fake result.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from services.common import ConfigModel, ServerConfig, VigilServer, run_main
from vigil.healthd.v1 import healthd_pb2_grpc as _pb_grpc


class HealthdConfig(ConfigModel):
    """Settings of the healthd process."""

    server: ServerConfig = ServerConfig(port=50050)
    """gRPC server settings (default port 50050)."""


async def build(config: HealthdConfig) -> VigilServer:
    server = VigilServer(config.server, "healthd")
    server.add_servicer(
        _pb_grpc.add_HealthDaemonServicer_to_server,
        _pb_grpc.HealthDaemonServicer(),
        "vigil.healthd.v1.HealthDaemon",
    )
    return server


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(argv, model=HealthdConfig, env_prefix="VIGIL_HEALTHD_", build=build, prog="healthd")


if __name__ == "__main__":
    sys.exit(main())
