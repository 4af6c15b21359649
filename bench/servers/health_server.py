"""A grpc.health.v1 server process for the health benchmarks.

    python -m bench.servers.health_server --impl vigil|ours|grpcio [--services N]

``vigil``: our `HealthServicer` served by `VigilServer` (the runtime healthd and both
services use: error-mapping interceptor, reflection). ``ours``: our `HealthServicer` on a
bare ``grpc.aio`` server. ``grpcio``: grpcio-health-checking's asyncio `HealthServicer`
on the same bare server. Registers ``svc-0`` .. ``svc-{N-1}`` SERVING.

Announces its port with a JSON "listening on" line on stderr; then reads commands on
stdin, one per line, answering one line on stdout:
    set NAME STATUS   -> "ok"       (STATUS: SERVING | NOT_SERVING)
    watchers NAME     -> "<count>"  (open Watch streams; ours only, else "-1")
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import grpc
from grpc_health.v1 import _async as grpc_health_async
from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc

from services.common import HealthServicer, ServerConfig, VigilServer


async def _commands(health: HealthServicer | grpc_health_async.HealthServicer) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode():
        words = line.split()
        if words[:1] == ["set"] and len(words) == 3:
            await health.set(words[1], hpb.HealthCheckResponse.ServingStatus.Value(words[2]))
            answer = "ok"
        elif words[:1] == ["watchers"] and len(words) == 2:
            answer = str(health.watcher_count(words[1])) if isinstance(health, HealthServicer) else "-1"
        else:
            answer = f"error: unknown command {line.strip()!r}"
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()


async def serve(impl: str, services: int) -> None:
    options = [("grpc.so_reuseport", 0)]
    if impl == "vigil":
        vigil = VigilServer(ServerConfig(port=0, grace_period_s=0), "bench-health")
        health: HealthServicer | grpc_health_async.HealthServicer = vigil.health
        port = await vigil.start()
        server = vigil.grpc_server
    else:
        health = HealthServicer() if impl == "ours" else grpc_health_async.HealthServicer()
        server = grpc.aio.server(options=options)
        hpb_grpc.add_HealthServicer_to_server(health, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        await health.set("", hpb.HealthCheckResponse.SERVING)
    for i in range(services):
        await health.set(f"svc-{i}", hpb.HealthCheckResponse.SERVING)
    print(json.dumps({"msg": f"listening on 127.0.0.1:{port}", "port": port}), file=sys.stderr, flush=True)
    await _commands(health)  # stdin closed: the benchmark is done with us
    await server.stop(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["vigil", "ours", "grpcio"], required=True)
    parser.add_argument("--services", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(serve(args.impl, args.services))


if __name__ == "__main__":
    main()
