"""A test OTLP/gRPC trace receiver process (the collector's TraceService) that counts spans.

    python -m bench.servers.otlp_receiver

Announces its port with a JSON "listening on" line on stderr; answers ``count`` on stdin
with the number of spans received so far. It decodes every export request (as a
collector must) and keeps nothing else, so it costs what a thin collector costs.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as _ts
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as _ts_grpc


class Counter(_ts_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans = 0

    async def Export(
        self, request: _ts.ExportTraceServiceRequest, context: Any
    ) -> _ts.ExportTraceServiceResponse:
        self.spans += sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        return _ts.ExportTraceServiceResponse()


async def serve() -> None:
    counter = Counter()
    server = grpc.aio.server()
    _ts_grpc.add_TraceServiceServicer_to_server(counter, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(json.dumps({"msg": f"listening on 127.0.0.1:{port}", "port": port}), file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode():
        answer = str(counter.spans) if line.strip() == "count" else f"error: {line.strip()!r}"
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()
    await server.stop(0)


if __name__ == "__main__":
    asyncio.run(serve())
