"""Throughput of the supervised local stack with 2 replicas of each service vs 1 (issue 12).

Both stacks run side by side (healthd supervising security and workflow, as `make run`);
the same client measures StartRun(echo, wait) at c64 against each, alternately, so machine
drift falls on both alike. The client spreads its calls over several connections: replicas
share one port (SO_REUSEPORT) and the kernel balances connections, not calls. On a 2-core
machine the ratio may well be flat; it is reported either way.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import grpc

from bench._load import load_figures, rotated_load
from bench._registry import Context, Skip, benchmark
from bench._report import Figure
from bench._stack import LocalStack
from bench.services import _struct, scratch
from vigil.workflow.v1 import workflow_pb2 as _wpb
from vigil.workflow.v1 import workflow_pb2_grpc as _wpb_grpc

CONCURRENCY = 64
CONNECTIONS = 8


async def _caller(stack: LocalStack, exits: AsyncExitStack) -> Callable[[], Awaitable[Any]]:
    """StartRun(echo, wait) round-robin over ``CONNECTIONS`` connections to ``stack``."""
    stubs = []
    for _ in range(CONNECTIONS):
        channel = grpc.aio.insecure_channel(
            stack.address("workflow"), options=[("grpc.use_local_subchannel_pool", 1)]
        )
        await exits.enter_async_context(channel)
        stubs.append(_wpb_grpc.WorkflowServiceStub(channel))
    request = _wpb.StartRunRequest(workflow="echo", params=_struct({"message": "bench"}), wait=True)
    metadata = (("authorization", f"Bearer {stack.token}"),)
    turn = itertools.cycle(stubs)

    def call() -> Awaitable[Any]:
        return next(turn).StartRun(request, metadata=metadata, timeout=30)

    return call


@benchmark(
    "stack.replicas", "StartRun(echo, wait) c64: 2 replicas of each service vs 1, supervised local stack"
)
async def replicas(ctx: Context) -> list[Figure]:
    if "replicas" not in inspect.signature(LocalStack).parameters:
        raise Skip("replicas in the local stack are not built yet (healthd supervisor replicas)")
    with scratch() as root:
        stacks = {n: LocalStack(root / f"r{n}", replicas=n) for n in (2, 1)}  # type: ignore[call-arg]
        try:
            for stack in stacks.values():
                await stack.start()
            async with AsyncExitStack() as exits:
                calls = {f"{n} replicas": await _caller(stack, exits) for n, stack in stacks.items()}
                samples = await rotated_load(
                    calls, concurrency=CONCURRENCY, repeats=ctx.repeats, duration_s=ctx.seconds(3.0)
                )
        finally:
            for stack in stacks.values():
                stack.stop()
    two, one = samples["2 replicas"], samples["1 replicas"]
    ctx.log(f"StartRun c64: 2 replicas {two[-1].throughput:.0f}/s vs 1 replica {one[-1].throughput:.0f}/s")
    return load_figures(
        f"StartRun c{CONCURRENCY} 2 replicas",
        two,
        one,
        "the same stack with 1 replica of each service, same client (8 connections)",
        None,
    )
