"""The batched security hop: Screen on ScreenStream vs unary Screen, CPU per call from /proc.

Both variants use what the workflow service uses: 4 pooled connections, unary
`PooledStub.Screen` or `ScreenStreams` (one stream per connection). Each sample runs one
variant closed-loop and reads the server processes' CPU time (user + system, all threads)
before and after, divided by the calls completed. Variants rotate within each repeat, so
the shared machine's drifting load falls on each alike; the figures are medians.

- ``security.screen_stream``: a security process alone; security CPU per Screen (stream vs
  unary, and stream vs a bare grpc.health.v1 Check on the same connections).
- ``workflow.screen_stream``: two unsupervised stacks, ``security_stream`` on and off;
  workflow and security CPU per StartRun(echo, wait), runs/s, and the stream stack against
  a bare Check on its own workflow server.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from grpc_health.v1 import health_pb2 as hpb
from grpc_health.v1 import health_pb2_grpc as hpb_grpc

from bench._load import closed_loop
from bench._procs import ServerProcess, cpu_s, running
from bench._registry import Context, benchmark
from bench._report import Figure, Target
from bench._stack import SECURITY, WORKFLOW, LocalStack
from bench.services import scratch, screen_request
from services.common import PooledStub, pooled_channels
from services.workflow._screen_stream import ScreenStreams
from services.workflow._security_client import SECURITY_CHANNELS, SECURITY_SERVICE_CONFIG
from vigil.security.v1 import security_pb2_grpc as _spb_grpc
from vigil.workflow.v1 import workflow_pb2 as _wpb
from vigil.workflow.v1 import workflow_pb2_grpc as _wpb_grpc

CONCURRENCY = (16, 64)
Call = Callable[[], Awaitable[Any]]


@dataclass
class Samples:
    """Per repeat: calls/s over the measured window, and CPU ms per completed call by process."""

    throughput: list[float] = field(default_factory=list)
    cpu_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0


async def _sample(
    call: Call, pids: Mapping[str, int], concurrency: int, duration_s: float, into: Samples
) -> None:
    done = 0

    async def counted() -> Any:
        nonlocal done
        reply = await call()
        done += 1
        return reply

    before = {name: cpu_s(pid) for name, pid in pids.items()}
    result = await closed_loop(counted, concurrency=concurrency, duration_s=duration_s, warmup_s=0.3)
    for name, pid in pids.items():
        per_call = (cpu_s(pid) - before[name]) * 1000 / max(done, 1)
        into.cpu_ms.setdefault(name, []).append(per_call)
    into.throughput.append(result.throughput)
    into.errors += sum(result.errors.values())


async def rotated_cpu(
    variants: Mapping[str, tuple[Call, Mapping[str, int]]],
    *,
    concurrency: int,
    repeats: int,
    duration_s: float,
) -> dict[str, Samples]:
    """``repeats`` samples of each variant (call, processes to measure), the first rotating."""
    names = list(variants)
    out = {name: Samples() for name in names}
    for rep in range(repeats):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            call, pids = variants[name]
            await _sample(call, pids, concurrency, duration_s, out[name])
    return out


def _rates(s: Mapping[str, Samples]) -> str:
    return ", ".join(f"{name} {v.throughput[-1]:.0f}/s" for name, v in s.items())


def _load_note() -> str:
    return f"load average {os.getloadavg()[0]:.1f} at the end (2 shared cores)"


def _cpu_figures(
    label: str, proc: str, ours: Samples, ref: Samples, ref_label: str, target: Target | None
) -> Figure:
    return Figure(f"{label} {proc} CPU/call", "ms", ours.cpu_ms[proc], ref.cpu_ms[proc], ref_label, target)


@benchmark(
    "security.screen_stream", "security CPU per Screen: ScreenStream vs unary Screen vs bare Check, c16/c64"
)
async def security_screen_stream(ctx: Context) -> list[Figure]:
    figures: list[Figure] = []
    with scratch() as root:
        stack = LocalStack(root, supervised=False)
        proc = ServerProcess(
            ["-m", "services.security", "--config", str(stack.security_config())], name="security"
        )
        with running(proc):
            channels = pooled_channels(proc.address, SECURITY_CHANNELS, SECURITY_SERVICE_CONFIG)
            unary = PooledStub(_spb_grpc.SecurityServiceStub, channels)
            health = PooledStub(hpb_grpc.HealthStub, channels)
            streams = ScreenStreams(channels, unary.Screen)
            request = screen_request(stack.token)
            try:
                await unary.Screen(request, timeout=10)  # refused loudly if misconfigured
                await streams.Screen(request, timeout=10)
                # The client's CPU too: the bench process is the caller, as the workflow service is.
                pids = {"security": proc.pid, "client": os.getpid()}
                variants = {
                    "stream": (partial(streams.Screen, request, timeout=10), pids),
                    "unary": (partial(unary.Screen, request, timeout=10), pids),
                    "check": (
                        partial(health.Check, hpb.HealthCheckRequest(service=SECURITY), timeout=10),
                        pids,
                    ),
                }
                for conc in CONCURRENCY:
                    s = await rotated_cpu(
                        variants, concurrency=conc, repeats=ctx.repeats, duration_s=ctx.seconds(1.5)
                    )
                    label = f"Screen stream c{conc}"
                    ctx.log(f"{label}: {_rates(s)}")
                    note = f"{_load_note()}; errors stream {s['stream'].errors}, unary {s['unary'].errors}"
                    figures += [
                        Figure(
                            f"{label} throughput",
                            "req/s",
                            s["stream"].throughput,
                            s["unary"].throughput,
                            "unary Screen, same 4 connections",
                            None,
                            note,
                        ),
                        _cpu_figures(label, "security", s["stream"], s["unary"], "unary Screen", None),
                        _cpu_figures(label, "client", s["stream"], s["unary"], "unary Screen", None),
                        _cpu_figures(
                            f"{label} vs Check",
                            "security",
                            s["stream"],
                            s["check"],
                            "bare Check, same connections",
                            Target.ratio_at_most(1.5),
                        ),
                    ]
                    if conc == CONCURRENCY[-1]:
                        figures.append(
                            _cpu_figures(
                                f"Screen unary c{conc} vs Check",
                                "security",
                                s["unary"],
                                s["check"],
                                "bare Check, same connections",
                                Target.ratio_at_most(1.5),
                            )
                        )
            finally:
                await streams.close()
                await unary.close()
    return figures


def _start_run(stack: LocalStack) -> tuple[Call, _wpb_grpc.WorkflowServiceStub, Any]:
    channel = pooled_channels(stack.address("workflow"), 1, {})[0]
    stub = _wpb_grpc.WorkflowServiceStub(channel)
    request = _wpb.StartRunRequest(workflow="echo", params=screen_request("").params, wait=True)
    metadata = (("authorization", f"Bearer {stack.token}"),)
    return partial(stub.StartRun, request, metadata=metadata, timeout=30), stub, channel


@benchmark(
    "workflow.screen_stream", "StartRun(echo, wait) with security_stream on vs off: CPU per run, c16/c64"
)
async def workflow_screen_stream(ctx: Context) -> list[Figure]:
    figures: list[Figure] = []
    with scratch() as root:
        stacks = {
            "stream": LocalStack(root / "stream", supervised=False, workflow={"security_stream": True}),
            "unary": LocalStack(root / "unary", supervised=False, workflow={"security_stream": False}),
        }
        channels: list[Any] = []
        try:
            for stack in stacks.values():
                await stack.start()
            variants: dict[str, tuple[Call, Mapping[str, int]]] = {}
            for name, stack in stacks.items():
                call, _, channel = _start_run(stack)
                channels.append(channel)
                pids = {"workflow": await stack.pid("workflow"), "security": await stack.pid("security")}
                variants[name] = (call, pids)
            ours = stacks["stream"]
            health = hpb_grpc.HealthStub(channels[0])
            check = partial(health.Check, hpb.HealthCheckRequest(service=WORKFLOW), timeout=10)
            variants["check"] = (
                check,
                {"workflow": await ours.pid("workflow"), "security": await ours.pid("security")},
            )
            for conc in CONCURRENCY:
                s = await rotated_cpu(
                    variants, concurrency=conc, repeats=ctx.repeats, duration_s=ctx.seconds(1.5)
                )
                label = f"StartRun stream c{conc}"
                ctx.log(f"{label}: {_rates(s)}")
                note = f"{_load_note()}; errors stream {s['stream'].errors}, unary {s['unary'].errors}"
                figures += [
                    Figure(
                        f"{label} throughput",
                        "runs/s",
                        s["stream"].throughput,
                        s["unary"].throughput,
                        "security_stream: false (unary Screen), own stack",
                        None,
                        note,
                    ),
                    Figure(
                        f"{label} vs Check throughput",
                        "runs/s",
                        s["stream"].throughput,
                        s["check"].throughput,
                        "bare Check on the same workflow server",
                        Target.ratio_at_least(0.3) if conc == 64 else None,
                    ),
                    _cpu_figures(label, "workflow", s["stream"], s["unary"], "security_stream: false", None),
                    _cpu_figures(label, "security", s["stream"], s["unary"], "security_stream: false", None),
                    _cpu_figures(
                        f"{label} vs Check",
                        "workflow",
                        s["stream"],
                        s["check"],
                        "bare Check on the same workflow server",
                        Target.ratio_at_most(2.0),
                    ),
                ]
        finally:
            for channel in channels:
                await channel.close()
            for stack in stacks.values():
                stack.stop()
    return figures
