"""Entry point: `python -m services.security` serves vigil.security.v1.SecurityService.

The foundation serves health, reflection and the contract; RPCs not yet built
answer UNIMPLEMENTED (the generated base servicer), never a fake result.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from services.common import ConfigModel, ServerConfig, VigilServer, run_main
from vigil.security.v1 import security_pb2_grpc as _pb_grpc


class SecurityConfig(ConfigModel):
    """Settings of the security process."""

    server: ServerConfig = ServerConfig(port=50052)
    """gRPC server settings (default port 50052)."""


async def build(config: SecurityConfig) -> VigilServer:
    server = VigilServer(config.server, "security")
    server.add_servicer(
        _pb_grpc.add_SecurityServiceServicer_to_server,
        _pb_grpc.SecurityServiceServicer(),
        "vigil.security.v1.SecurityService",
    )
    return server


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(argv, model=SecurityConfig, env_prefix="VIGIL_SECURITY_", build=build, prog="security")


if __name__ == "__main__":
    sys.exit(main())
