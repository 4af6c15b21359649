"""Soak: mixed load on the real local stack with periodic faults, reporting each process's
resident memory over time (target: flat after warm-up).

    python -m tests.chaos.soak --duration 300 [--fault-every 30] [--no-faults]
    make soak DURATION=300

Load (bounded, 127.0.0.1 only): durable two-step runs, StartRun(echo, wait), GetRun,
ListRuns and healthd Checks. Faults rotate kill -9 workflow, kill -9 security, SIGSTOP
workflow; healthd heals each. Memory is sampled every second per process *incarnation*
(a restarted service starts a new one); growth is judged on the longest-lived incarnation
of each component after its warm-up (the first quarter of its life, at least 10 s).
At the end every accepted run is audited as in the drills (lost must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc

from bench import WORKFLOW, LocalStack, rss_mb
from tests.chaos.drill import PLUGIN, Drill, render
from vigil.workflow.v1 import workflow_pb2 as wpb
from vigil.workflow.v1 import workflow_pb2_grpc as wpb_grpc

FAULTS = (("workflow", signal.SIGKILL), ("security", signal.SIGKILL), ("workflow", signal.SIGSTOP))
FLAT_MB = 10.0  # growth of a warmed-up process over the soak that still counts as flat


async def _mixed(drill: Drill, stop: asyncio.Event, counts: dict[str, int]) -> None:
    """Reads and waited runs beside the drill's durable-run load."""
    stack = drill.stack
    md = (("authorization", f"Bearer {stack.token}"),)
    async with (
        grpc.aio.insecure_channel(stack.address("workflow")) as wf_chan,
        grpc.aio.insecure_channel(stack.address("healthd")) as hd_chan,
    ):
        wf, health = wpb_grpc.WorkflowServiceStub(wf_chan), hpb_grpc.HealthStub(hd_chan)
        echo = wpb.StartRunRequest(workflow="echo", wait=True)
        for n in itertools.count():
            if stop.is_set():
                return
            try:
                if n % 4 == 0:
                    await wf.StartRun(echo, metadata=md, timeout=5)
                elif n % 4 == 1 and drill.accepted:
                    await wf.GetRun(wpb.GetRunRequest(run_id=drill.accepted[-1]), metadata=md, timeout=5)
                elif n % 4 == 2:
                    await wf.ListRuns(wpb.ListRunsRequest(page_size=20), metadata=md, timeout=5)
                else:
                    await health.Check(hpb.HealthCheckRequest(service=WORKFLOW), timeout=5)
                counts["ok"] += 1
            except grpc.aio.AioRpcError as exc:
                counts[exc.code().name] += 1
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.01)


async def _sample(
    stack: LocalStack, stop: asyncio.Event, series: dict[tuple[str, int], list[tuple[float, float]]]
) -> None:
    start = time.monotonic()
    while not stop.is_set():
        for name in ("healthd", "security", "workflow"):
            try:
                pid = stack.procs["healthd"].pid if name == "healthd" else await stack.pid(name)
                series[(name, pid)].append((time.monotonic() - start, rss_mb(pid)))
            except (LookupError, ProcessLookupError, OSError, grpc.aio.AioRpcError):
                pass  # between incarnations
        await asyncio.sleep(1.0)


def _growth(samples: list[tuple[float, float]]) -> tuple[float, float, float]:
    """(warm-up RSS, final RSS, slope MB/min) over the samples after warm-up."""
    life = samples[-1][0] - samples[0][0]
    warm = samples[0][0] + max(10.0, life / 4)
    after = [s for s in samples if s[0] >= warm] or samples[-1:]
    n = len(after)
    mean_t = sum(t for t, _ in after) / n
    mean_m = sum(m for _, m in after) / n
    var = sum((t - mean_t) ** 2 for t, _ in after)
    slope = sum((t - mean_t) * (m - mean_m) for t, m in after) / var if var else 0.0
    return after[0][1], after[-1][1], slope * 60


async def soak(duration_s: float, fault_every_s: float, faults: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="vigil-soak-") as tmp:
        root = Path(tmp)
        ledger = root / "ledger"
        stack = LocalStack(
            root / "stack", workflow={"workflows": PLUGIN}, workflow_env={"CHAOS_LEDGER": str(ledger)}
        )
        drill = Drill("soak", stack, ledger, concurrency=3, delay_s=0.05)
        stop = asyncio.Event()
        series: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
        counts: dict[str, int] = defaultdict(int)
        try:
            await stack.start()
            drill.start_load(max_requests=10**6, max_s=duration_s + 5)
            tasks = [
                asyncio.ensure_future(_mixed(drill, stop, counts)),
                asyncio.ensure_future(_sample(stack, stop, series)),
            ]
            started = time.monotonic()
            injected = []
            for name, sig in itertools.cycle(FAULTS) if faults else iter(()):
                await asyncio.sleep(min(fault_every_s, max(0.0, duration_s - (time.monotonic() - started))))
                if time.monotonic() - started >= duration_s - 5:
                    break
                os.kill(await stack.pid(name), sig)
                injected.append(f"{name}:{signal.Signals(sig).name}")
                print(
                    f"[{time.monotonic() - started:6.1f}s] fault: {injected[-1]}", file=sys.stderr, flush=True
                )
            await asyncio.sleep(max(0.0, duration_s - (time.monotonic() - started)))
            stop.set()
            await asyncio.gather(*tasks)
            report = await drill.finish()
        finally:
            await drill.close()
            stack.stop()
    print(f"\nsoak {duration_s:.0f} s, faults: {', '.join(injected) or 'none'}")
    print(render([report]))
    print("mixed calls: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print("\nprocess  | pid     | life s | RSS after warm-up MB | final MB | slope MB/min | flat?")
    verdict = report.lost == 0
    by_component: dict[str, tuple[str, int]] = {}
    for (name, pid), samples in series.items():
        life = samples[-1][0] - samples[0][0]
        if name not in by_component or life > (
            series[by_component[name]][-1][0] - series[by_component[name]][0][0]
        ):
            by_component[name] = (name, pid)
    for key, samples in sorted(series.items()):
        name, pid = key
        life = samples[-1][0] - samples[0][0]
        warm, final, slope = _growth(samples)
        judged = by_component[name] == key
        flat = final - warm <= FLAT_MB
        if judged:
            verdict &= flat
        mark = ("yes" if flat else "NO") if judged else "(short-lived)"
        print(f"{name:8} | {pid:7} | {life:6.0f} | {warm:20.1f} | {final:8.1f} | {slope:12.2f} | {mark}")
    print(f"\nflat = growth after warm-up <= {FLAT_MB:g} MB on each component's longest-lived process")
    print("lost must be 0")
    return 0 if verdict else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load (default 300)")
    parser.add_argument("--fault-every", type=float, default=30.0, help="seconds between faults (default 30)")
    parser.add_argument("--no-faults", action="store_true", help="load only")
    args = parser.parse_args(argv)
    return asyncio.run(soak(args.duration, args.fault_every, not args.no_faults))


if __name__ == "__main__":
    sys.exit(main())
