"""A tiny real gRPC server for healthd tests: grpc.health.v1 with one named service.

Usage: python child_server.py PORT SERVICE_NAME
Exits 0 on SIGTERM after a graceful stop.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from grpc_health.v1 import health_pb2 as _hpb

from services.common import ServerConfig, VigilServer


async def main(port: int, name: str) -> None:
    server = VigilServer(ServerConfig(port=port, grace_period_s=1), "child")
    await server.health.set(name, _hpb.HealthCheckResponse.SERVING)
    await server.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(server.stop()))
    print(f"child serving {name} on {port}", flush=True)
    await server.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
