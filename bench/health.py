"""grpc.health.v1 benchmarks: Check throughput/latency and Watch fan-out.

Ours is `services.common.HealthServicer` as healthd serves it (`healthd._daemon.grpc_server`:
`VigilServer` with healthd's instrumentation); the reference is grpcio-health-checking's
asyncio `HealthServicer` on a bare ``grpc.aio`` server with the same options. Each runs in
its own process; the client is this process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import grpc
from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc

from bench._load import load_figures, rotated_load
from bench._procs import ServerProcess, running
from bench._registry import Context, benchmark
from bench._report import Figure, Target, percentile

REF_LABEL = "grpcio-health-checking asyncio HealthServicer (bare grpc.aio server), same client"
CONCURRENCY = (1, 16, 64)
SERVING, NOT_SERVING = hpb.HealthCheckResponse.SERVING, hpb.HealthCheckResponse.NOT_SERVING


def health_server(impl: str, services: int = 1) -> ServerProcess:
    args = ["-m", "bench.servers.health_server", "--impl", impl, "--services", str(services)]
    return ServerProcess(args, name=f"health-{impl}")


@asynccontextmanager
async def channels(address: str, count: int) -> AsyncIterator[list[grpc.aio.Channel]]:
    """``count`` separate connections to ``address`` (closed on exit)."""
    # A distinct channel arg forces a separate subchannel (TCP connection) per channel.
    chans = [grpc.aio.insecure_channel(address, options=[("bench.conn", i)]) for i in range(count)]
    try:
        yield chans
    finally:
        for chan in chans:
            await chan.close()


@benchmark("health.check", "grpc.health.v1 Check throughput and latency at concurrency 1/16/64")
async def check_throughput(ctx: Context) -> list[Figure]:
    """Three servers: ours as healthd serves it (VigilServer), ours on a bare grpc.aio server
    (the servicer alone), and grpcio's on the same bare server (the reference)."""
    procs = {"ours": health_server("vigil"), "bare": health_server("ours"), "ref": health_server("grpcio")}
    figures: list[Figure] = []
    request = hpb.HealthCheckRequest(service="svc-0")
    with running(*procs.values()):
        async with (
            channels(procs["ours"].address, 1) as (ours_chan,),
            channels(procs["bare"].address, 1) as (bare_chan,),
            channels(procs["ref"].address, 1) as (ref_chan,),
        ):
            stubs = {
                who: hpb_grpc.HealthStub(c)
                for who, c in (("ours", ours_chan), ("bare", bare_chan), ("ref", ref_chan))
            }
            for conc in CONCURRENCY:
                samples = await rotated_load(
                    {who: partial(stub.Check, request, timeout=10) for who, stub in stubs.items()},
                    concurrency=conc,
                    repeats=ctx.repeats,
                    duration_s=ctx.seconds(1.2),
                    pids={who: proc.pid for who, proc in procs.items()},
                )
                last = ", ".join(f"{w} {samples[w][-1].throughput:.0f}" for w in samples)
                ctx.log(f"health.check c{conc}: {last} req/s")
                figures += load_figures(
                    f"Check c{conc}",
                    samples["ours"],
                    samples["ref"],
                    REF_LABEL,
                    Target.ratio_at_least(1.0),
                    Target.ratio_at_most(1.0),
                )
                bare = samples["bare"]
                figures.append(
                    Figure(
                        f"Check c{conc} throughput, servicer alone",
                        "req/s",
                        [r.throughput for r in bare],
                        [r.throughput for r in samples["ref"]],
                        REF_LABEL,
                        Target.ratio_at_least(1.0),
                        "ours on a bare grpc.aio server (no VigilServer interceptor), like the reference",
                    )
                )
                # Throughput of one server process depends on where it falls among the three
                # on a loaded machine (grpcio beside grpcio differs up to 2x at c16); the server
                # CPU each answer costs does not.
                figures.append(
                    Figure(
                        f"Check c{conc} server CPU per call",
                        "ms",
                        [r.cpu_ms_per_call("ours") for r in samples["ours"]],
                        [r.cpu_ms_per_call("ref") for r in samples["ref"]],
                        f"{REF_LABEL} (/proc utime+stime over the window)",
                        Target.ratio_at_most(1.0),
                    )
                )
    return figures


class _Watchers:
    """``n`` Watch streams on one service; records when each sees each new status."""

    def __init__(self, stub_for: list[hpb_grpc.HealthStub], service: str, n: int) -> None:
        self.n = n
        self.latest: list[int] = [-1] * n
        self.seen_at: list[float] = [0.0] * n
        self._want = -1
        self._count = 0
        self._all = asyncio.Event()
        self._calls = [
            stub_for[i % len(stub_for)].Watch(hpb.HealthCheckRequest(service=service)) for i in range(n)
        ]
        self._tasks = [asyncio.ensure_future(self._read(i)) for i in range(n)]

    async def _read(self, i: int) -> None:
        async for response in self._calls[i]:
            now = time.perf_counter()
            self.latest[i], self.seen_at[i] = response.status, now
            if response.status == self._want:
                self._count += 1
                if self._count == self.n:
                    self._all.set()

    async def expect(self, status: int, wait_s: float) -> bool:
        """Arm for ``status`` (counting watchers already there) and wait until all have it."""
        self._want, self._all = status, asyncio.Event()
        self._count = sum(1 for s in self.latest if s == status)
        if self._count == self.n:
            return True
        try:
            await asyncio.wait_for(self._all.wait(), wait_s)
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        for call in self._calls:
            call.cancel()
        for task in self._tasks:
            task.cancel()


@benchmark("health.watch_fanout", "1,000 Watch streams: time until every watcher has a status change")
async def watch_fanout(ctx: Context) -> list[Figure]:
    n = 250 if ctx.quick else 1000
    procs = {"ours": health_server("vigil"), "ref": health_server("grpcio")}
    p99: dict[str, list[float]] = {"ours": [], "ref": []}
    all_in: dict[str, list[float]] = {"ours": [], "ref": []}
    timeouts = {"ours": 0, "ref": 0}
    with running(*procs.values()):
        async with (
            channels(procs["ours"].address, 10) as ours_chans,
            channels(procs["ref"].address, 10) as ref_chans,
        ):
            watchers = {
                "ours": _Watchers([hpb_grpc.HealthStub(c) for c in ours_chans], "svc-0", n),
                "ref": _Watchers([hpb_grpc.HealthStub(c) for c in ref_chans], "svc-0", n),
            }
            try:
                for who, w in watchers.items():
                    if not await w.expect(SERVING, 30):
                        raise RuntimeError(f"{who}: {n} watchers did not all open within 30 s")
                status = SERVING
                for rep in range(ctx.repeats):
                    status = NOT_SERVING if status == SERVING else SERVING
                    for who in ("ours", "ref") if rep % 2 == 0 else ("ref", "ours"):
                        w = watchers[who]
                        t0 = time.perf_counter()
                        procs[who].send(f"set svc-0 {hpb.HealthCheckResponse.ServingStatus.Name(status)}")
                        ok = await w.expect(status, 10)
                        await procs[who].answer()  # the "ok" of `set`
                        if not ok:
                            timeouts[who] += 1
                            continue
                        delays = [(t - t0) * 1000 for t in w.seen_at]
                        p99[who].append(percentile(delays, 99))
                        all_in[who].append(max(delays))
                ctx.log(f"watch fan-out x{n}: all delivered {all_in['ours'][-1:]} vs {all_in['ref'][-1:]} ms")
            finally:
                for w in watchers.values():
                    w.close()
    note = (
        f"{n} watchers over 10 connections; flips that timed out (10 s): ours {timeouts['ours']}, "
        f"reference {timeouts['ref']}"
    )
    return [
        Figure(
            f"Watch x{n} p99 delivery", "ms", p99["ours"], p99["ref"], REF_LABEL, Target.at_most(250), note
        ),
        Figure(
            f"Watch x{n} all delivered", "ms", all_in["ours"], all_in["ref"], REF_LABEL, Target.at_most(250)
        ),
    ]
