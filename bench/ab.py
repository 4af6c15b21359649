"""A/B of two source trees: the same request against servers started from each, interleaved.

    python -m bench.ab --a /tmp/main-checkout [--b .] screen|start|check [--conc 16] [--repeats 5]

``screen``: Screen on a security process; ``start``: StartRun(echo, wait) on a workflow +
security pair; ``check``: grpc.health.v1 Check on the servers' runtime (VigilServer). Each
tree gets its own processes (its own stores) started from that tree (``-m`` imports from
the working directory); the repeats rotate which tree goes first. Prints the median of the
per-repeat throughput ratios B/A and the CPU per call of every process (/proc), which is
the steadier figure on a shared machine. Rate limits are off in both, so a tree's default
limit does not decide the comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc

from bench._load import LoadResult, rotated_load
from bench._procs import REPO, ServerProcess, python_env, running
from bench._stack import SECURITY, LocalStack
from bench.services import _struct, screen_request
from vigil.security.v1 import security_pb2_grpc as _spb_grpc
from vigil.workflow.v1 import workflow_pb2 as _wpb
from vigil.workflow.v1 import workflow_pb2_grpc as _wpb_grpc

Call = Callable[[], Awaitable[Any]]


def _procs(tree: Path, stack: LocalStack, what: str) -> dict[str, ServerProcess]:
    procs = {
        "security": ServerProcess(
            ["-m", "services.security", "--config", str(stack.security_config())],
            env=python_env(),
            cwd=tree,
        )
    }
    if what == "start":
        procs["workflow"] = ServerProcess(
            ["-m", "services.workflow", "--config", str(stack.workflow_config())], env=python_env(), cwd=tree
        )
    return procs


def _call(what: str, stack: LocalStack, channel: grpc.aio.Channel) -> Call:
    if what == "screen":
        return partial(_spb_grpc.SecurityServiceStub(channel).Screen, screen_request(stack.token), timeout=10)
    if what == "check":
        request = hpb.HealthCheckRequest(service=SECURITY)
        return partial(hpb_grpc.HealthStub(channel).Check, request, timeout=10)
    request = _wpb.StartRunRequest(workflow="echo", params=_struct({"message": "ab"}), wait=True)
    metadata = (("authorization", f"Bearer {stack.token}"),)
    return partial(_wpb_grpc.WorkflowServiceStub(channel).StartRun, request, metadata=metadata, timeout=30)


def _cpu(samples: list[LoadResult], proc: str) -> float:
    return statistics.median(r.cpu_ms_per_call(proc) for r in samples)


async def compare(trees: dict[str, Path], what: str, conc: int, repeats: int, seconds: float) -> str:
    root = Path(tempfile.mkdtemp(prefix="vigil-ab-"))
    off = {"rate_limit": {"enabled": False}}
    stacks = {name: LocalStack(root / name, supervised=False, security=off) for name in trees}
    procs = {name: _procs(tree, stacks[name], what) for name, tree in trees.items()}
    everything = [p for by_name in procs.values() for p in by_name.values()]
    with running(*everything, timeout=60):
        calls: dict[str, Call] = {}
        channels = []
        for name, by_name in procs.items():
            front = by_name["workflow" if what == "start" else "security"]
            channel = grpc.aio.insecure_channel(front.address, options=[("ab.tree", name)])
            channels.append(channel)
            calls[name] = _call(what, stacks[name], channel)
            for _ in range(50):  # the workflow service may still be connecting to security
                try:
                    await calls[name]()
                    break
                except grpc.aio.AioRpcError:
                    await asyncio.sleep(0.2)
        pids = {f"{name}/{proc}": p.pid for name, by_name in procs.items() for proc, p in by_name.items()}
        try:
            samples = await rotated_load(
                calls, concurrency=conc, repeats=repeats, duration_s=seconds, pids=pids
            )
        finally:
            for channel in channels:
                await channel.close()
    pairs = zip(samples["A"], samples["B"], strict=True)
    ratio = statistics.median(b.throughput / a.throughput for a, b in pairs)
    lines = [f"{what} c{conc}, {repeats} repeats: throughput B/A {ratio:.2f} (median of per-repeat ratios)"]
    for proc in procs["A"]:
        a, b = _cpu(samples["A"], f"A/{proc}"), _cpu(samples["B"], f"B/{proc}")
        lines.append(f"  {proc} CPU per call: A {a:.3f} ms, B {b:.3f} ms, B/A {b / a:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("what", choices=["screen", "start", "check"])
    parser.add_argument("--a", type=Path, required=True, help="source tree A (e.g. a checkout of main)")
    parser.add_argument("--b", type=Path, default=REPO, help="source tree B (default: this one)")
    parser.add_argument("--conc", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}
    print(asyncio.run(compare(trees, args.what, args.conc, args.repeats, args.seconds)))


if __name__ == "__main__":
    main()
