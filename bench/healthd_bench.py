"""healthd: detection and heal time after kill -9 beside the service's bare start-up time,
and healthd's resident memory and CPU with 100 components beside one.

Detection is measured as a client sees it: a grpc.health.v1 Watch on healthd for the
workflow component, from the SIGKILL to NOT_SERVING, then to SERVING again (heal). The
bare start-up is the same workflow entry point started directly until it answers
SERVING, measured alternately with the heals in the same run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import time
from pathlib import Path

import grpc
import yaml
from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc

from bench._procs import ServerProcess, cpu_s, running
from bench._registry import Context, benchmark
from bench._report import Figure, Target
from bench._stack import WORKFLOW, LocalStack, free_port, wait_serving
from bench.health import health_server
from bench.services import scratch

SERVING, NOT_SERVING = hpb.HealthCheckResponse.SERVING, hpb.HealthCheckResponse.NOT_SERVING


async def _next_status(watch: grpc.aio.UnaryStreamCall, want: int, wait_s: float) -> float:
    """Read the Watch stream until ``want``; returns the perf_counter time it arrived."""
    async with asyncio.timeout(wait_s):
        while True:
            reply = await watch.read()
            if reply is grpc.aio.EOF:
                raise ConnectionError("healthd closed the Watch stream")
            if reply.status == want:
                return time.perf_counter()


async def _bare_startup(root: Path, stack: LocalStack, n: int) -> float:
    """Start the workflow entry point directly (own port and store) until SERVING; seconds."""
    cfg = yaml.safe_load(stack.workflow_config().read_text())
    cfg["server"]["port"] = free_port()
    cfg["store_path"] = str(root / f"bare-{n}.db")
    cfg["healthd_address"] = None
    path = root / f"bare-{n}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = ServerProcess(["-m", "services.workflow", "--config", str(path)], name="bare-workflow")
    start = time.perf_counter()
    try:
        await asyncio.to_thread(proc.start, 60)
        await wait_serving(proc.address, WORKFLOW, 60)
        return time.perf_counter() - start
    finally:
        proc.kill()


@benchmark(
    "healthd.heal", "kill -9 of the supervised workflow service: detection and heal time vs bare start-up"
)
async def detect_and_heal(ctx: Context) -> list[Figure]:
    reps = 3 if ctx.quick else 10
    detect: list[float] = []
    heal: list[float] = []
    bare: list[float] = []
    with scratch() as root:
        # A short heal window: each kill (spaced beyond it) is a first failure, so the heal
        # measured is the restart itself, not flap-damping backoff after repeated kills.
        stack = LocalStack(root, healing={"window_s": 1.0, "backoff_base_s": 0.0})
        try:
            await stack.start()
            async with grpc.aio.insecure_channel(stack.address("healthd")) as channel:
                health = hpb_grpc.HealthStub(channel)
                for n in range(reps):
                    bare.append(await _bare_startup(root, stack, n))
                    watch = health.Watch(hpb.HealthCheckRequest(service=WORKFLOW))
                    await _next_status(watch, SERVING, 30)
                    await asyncio.sleep(1.2)  # outside the heal window of the previous kill
                    pid = await stack.pid("workflow")
                    killed = time.perf_counter()
                    os.kill(pid, signal.SIGKILL)
                    down = await _next_status(watch, NOT_SERVING, 10)
                    up = await _next_status(watch, SERVING, 60)
                    watch.cancel()
                    detect.append(down - killed)
                    heal.append(up - killed)
                    await stack.wait_accepting(30)
            ctx.log(
                f"detect {statistics.median(detect):.3f} s, heal {statistics.median(heal):.3f} s, "
                f"bare start-up {statistics.median(bare):.3f} s"
            )
        finally:
            stack.stop()
    note = f"median of {reps} kills; heal = kill -> SERVING on healthd's Watch (detection included)"
    return [
        Figure("detection (kill -9 -> NOT_SERVING)", "s", detect, target=Target.at_most(0.5), note=note),
        Figure(
            "heal (kill -9 -> SERVING)",
            "s",
            heal,
            bare,
            "bare start-up of the same workflow entry point until SERVING, alternated",
            Target.ratio_at_most(1.5),
        ),
    ]


def _components(address: str, n: int) -> list[dict]:
    return [
        {
            "name": f"svc-{i}",
            "critical": i % 2 == 0,
            "checks": [
                {
                    "kind": "grpc",
                    "address": address,
                    "service": f"svc-{i}",
                    "interval_s": 1.0,
                    "timeout_s": 1.0,
                }
            ],
        }
        for i in range(n)
    ]


async def _healthd_rss(root: Path, target: str, n: int, settle_s: float) -> tuple[float, float]:
    """(resident MB, CPU as % of one core over 3 s) of a healthd with ``n`` components, settled."""
    cfg = {
        "server": {"port": 0},
        "http": {"port": 0},
        "mode": "sidecar",
        "components": _components(target, n),
    }
    path = root / f"healthd-{n}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = ServerProcess(["-m", "healthd", "--config", str(path)], name=f"healthd-{n}")
    with running(proc):
        await wait_serving(proc.address, f"svc-{n - 1}", 60)
        await asyncio.sleep(settle_s)  # every check has run a few times
        samples = []
        cpu0, t0 = cpu_s(proc.pid), time.monotonic()
        for _ in range(15):
            samples.append(proc.rss_mb())
            await asyncio.sleep(0.2)
        cpu = 100 * (cpu_s(proc.pid) - cpu0) / (time.monotonic() - t0)
    return statistics.median(samples), cpu


@benchmark("healthd.memory", "healthd resident memory and CPU with 100 components (gRPC checks, 1 s) vs 1")
async def memory(ctx: Context) -> list[Figure]:
    settle = 2.0 if ctx.quick else 5.0
    reps = 1 if ctx.quick else 3
    big: list[float] = []
    small: list[float] = []
    big_cpu: list[float] = []
    small_cpu: list[float] = []
    with scratch() as root, running(health_server("ours", services=100)) as (target,):
        for _ in range(reps):
            rss, cpu = await _healthd_rss(root, target.address, 100, settle)
            big.append(rss)
            big_cpu.append(cpu)
            rss, cpu = await _healthd_rss(root, target.address, 1, settle)
            small.append(rss)
            small_cpu.append(cpu)
    big_mb, small_mb = statistics.median(big), statistics.median(small)
    ctx.log(f"healthd RSS: 100 components {big_mb:.1f} MB, 1 component {small_mb:.1f} MB")
    return [
        Figure(
            "CPU with 100 components",
            "% core",
            big_cpu,
            [],
            "",
            None,
            "CPU of one core, median of repeats (1 component: "
            f"{statistics.median(small_cpu):.1f}%); a result that changes no status rebuilds one view",
        ),
        Figure(
            "RSS with 100 components",
            "MB",
            big,
            small,
            "the same healthd with 1 component",
            Target.at_most(80),
            "sidecar mode, 100 gRPC checks (each also holds a Watch stream) every 1 s against one server",
        ),
    ]
