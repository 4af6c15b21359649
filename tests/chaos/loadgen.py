"""Steady StartRun load from a process of its own, for drills that measure what a caller sees.

``python -m tests.chaos.loadgen --address A --token T --healthd H --out EVENTS.jsonl ...``

Every attempt is one JSON line in ``--out`` (``t0``/``t1``: wall-clock send and answer times,
``ok``, ``code``, ``run_id``, ``call``), and so is every ``readiness`` status healthd's Watch
reports (``t``, ``readiness``). The drill computes its figures from the file after the load
ended: this process only calls and records, so a fault in the stack never disturbs the meter.

Groups of callers (``--raw N``, ``--shipped N``):
  raw      one StartRun per call on a plain stub, no retry: each refusal is seen as it is
  shipped  `services.workflow.client.WorkflowClient.start_run`: retries under its own
           idempotency key; a line per logical call, ``ok`` false only if the call failed
Every call carries the label ``call=<uuid>``, so the drill can count runs per logical call
(a retry that created a second run shows up). ``--mix breaker`` makes the raw callers
interleave ``artifact.verify`` on a missing file (token ``--bad-token``) with good echo runs.
Bounded by ``--max-s`` and ``--max-calls``; stops early when ``--stop-file`` appears.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid
from pathlib import Path
from typing import IO, Any

import grpc
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc

from services.common import FAST_RECONNECT, VigilError
from services.workflow.client import WorkflowClient
from vigil.workflow.v1 import workflow_pb2 as wpb
from vigil.workflow.v1 import workflow_pb2_grpc as wpb_grpc

MISSING = {"path": "no-such-artifact.bin", "sha256": "0" * 64}


class Meter:
    def __init__(self, out: IO[str], args: argparse.Namespace) -> None:
        self.out, self.args = out, args
        self.budget = args.max_calls
        self.deadline = time.monotonic() + args.max_s
        self.stop_file = Path(args.stop_file) if args.stop_file else None

    def write(self, **record: Any) -> None:
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    def go(self) -> bool:
        if self.budget <= 0 or time.monotonic() >= self.deadline:
            return False
        if self.stop_file is not None and self.stop_file.exists():
            return False
        self.budget -= 1
        return True


async def raw_caller(meter: Meter, n: int) -> None:
    args = meter.args
    # One connection per caller, as separate client processes would have, reconnecting as the
    # shipped client does (gRPC's default backoff would measure the client, not the service).
    options = [("grpc.use_local_subchannel_pool", 1), *FAST_RECONNECT]
    async with grpc.aio.insecure_channel(args.address, options=options) as ch:
        stub = wpb_grpc.WorkflowServiceStub(ch)
        i = 0
        while meter.go():
            i += 1
            bad = args.mix == "breaker" and i % 2 == 1
            workflow, params, token = (args.workflow, args.params, args.token)
            if bad:
                workflow, params, token = ("artifact.verify", MISSING, args.bad_token)
            call = uuid.uuid4().hex
            s = struct_pb2.Struct()
            s.update(params)
            request = wpb.StartRunRequest(
                workflow=workflow,
                params=s,
                idempotency_key=f"raw-{call}",
                labels={"call": call},
                wait=args.mix == "breaker",
            )
            t0 = time.time()
            try:
                reply = await stub.StartRun(
                    request, metadata=(("authorization", f"Bearer {token}"),), timeout=args.timeout_s
                )
            except grpc.aio.AioRpcError as exc:
                meter.write(
                    group="raw",
                    kind=workflow,
                    t0=t0,
                    t1=time.time(),
                    ok=False,
                    code=exc.code().name,
                    detail=(exc.details() or "")[:200],
                )
                await asyncio.sleep(0.05)  # a refused caller backs off a little, as real ones do
                continue
            meter.write(
                group="raw",
                kind=workflow,
                t0=t0,
                t1=time.time(),
                ok=True,
                run_id=reply.run.run_id,
                call=call,
                state=wpb.RunState.Name(reply.run.state),
                error=reply.run.error.message,
            )
            await asyncio.sleep(args.pause_s)


async def shipped_caller(meter: Meter, n: int) -> None:
    args = meter.args
    async with WorkflowClient(args.address, token=args.token, timeout_s=args.timeout_s) as client:
        while meter.go():
            call = uuid.uuid4().hex
            t0 = time.time()
            try:
                run, _ = await client.start_run(args.workflow, args.params, labels={"call": call})
            except VigilError as exc:
                meter.write(
                    group="shipped",
                    t0=t0,
                    t1=time.time(),
                    ok=False,
                    code=exc.code.name,
                    detail=exc.message[:200],
                )
                continue
            meter.write(group="shipped", t0=t0, t1=time.time(), ok=True, run_id=run.run_id, call=call)
            await asyncio.sleep(args.pause_s)


async def readiness(meter: Meter) -> None:
    """Record healthd's ``readiness`` (reconnecting; UNKNOWN while healthd cannot be asked)."""
    name = hpb.HealthCheckResponse.ServingStatus.Name
    while True:
        async with grpc.aio.insecure_channel(meter.args.healthd) as channel:
            with contextlib.suppress(grpc.aio.AioRpcError):
                watch = hpb_grpc.HealthStub(channel).Watch(hpb.HealthCheckRequest(service="readiness"))
                async for reply in watch:
                    meter.write(t=time.time(), readiness=name(reply.status))
        meter.write(t=time.time(), readiness="UNKNOWN")
        await asyncio.sleep(0.2)


async def main(args: argparse.Namespace, out: IO[str]) -> None:
    meter = Meter(out, args)
    watch = asyncio.ensure_future(readiness(meter)) if args.healthd else None
    await asyncio.sleep(0.2)  # the first readiness status precedes the first call
    callers = [raw_caller(meter, i) for i in range(args.raw)]
    callers += [shipped_caller(meter, i) for i in range(args.shipped)]
    await asyncio.gather(*callers)
    if watch is not None:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    meter.write(done=True, t=time.time())


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--bad-token", default="")
    p.add_argument("--healthd", default="")
    p.add_argument("--out", required=True)
    p.add_argument("--workflow", default="chaos.counted")
    p.add_argument("--params", type=json.loads, default={"delay_s": 0.1})
    p.add_argument("--raw", type=int, default=2)
    p.add_argument("--shipped", type=int, default=2)
    p.add_argument("--mix", choices=["steady", "breaker"], default="steady")
    p.add_argument("--max-s", type=float, default=60.0)
    p.add_argument("--max-calls", type=int, default=5000)
    p.add_argument("--pause-s", type=float, default=0.02)
    p.add_argument("--timeout-s", type=float, default=5.0)
    p.add_argument("--stop-file", default="")
    return p.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    with open(arguments.out, "a", encoding="utf-8") as events:
        asyncio.run(main(arguments, events))
