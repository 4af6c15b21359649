"""A grpc.health.v1 server process for the health benchmarks.

    python -m bench.servers.health_server --impl vigil|ours|grpcio [--services N]

``vigil``: healthd's gRPC server exactly as the daemon builds it (`healthd._daemon.grpc_server`:
`VigilServer` with healthd's instrumentation: RPC metrics, error mapping, reflection; no
tracing, as a healthd without OTEL_* runs; the heap settled as `healthd._daemon.serve` does). ``ours``:
our `HealthServicer` on a bare ``grpc.aio`` server. ``grpcio``: grpcio-health-checking's
asyncio `HealthServicer` on the same bare server. The bare servers get the channel options
`VigilServer` sets (message limits, no SO_REUSEPORT), so only the servicers and what wraps
them differ. Registers ``svc-0`` .. ``svc-{N-1}`` SERVING.

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

from healthd._config import HealthdConfig, Mode
from healthd._daemon import grpc_server
from services.common import HealthServicer, ServerConfig, settle_heap
from services.common._interceptors import grpc_receive_limit


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
    defaults = ServerConfig(port=0, grace_period_s=0)
    # The options VigilServer gives its grpc.aio server (services/common/_server.py).
    options = [
        ("grpc.max_receive_message_length", grpc_receive_limit(defaults.max_message_bytes)),
        ("grpc.max_send_message_length", defaults.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    if impl == "vigil":
        _, vigil = grpc_server(HealthdConfig(server=defaults, mode=Mode.SIDECAR))
        health: HealthServicer | grpc_health_async.HealthServicer = vigil.health
        settle_heap()  # as healthd's serve() does before it starts
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
