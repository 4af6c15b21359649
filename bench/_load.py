"""Closed-loop load generation: N concurrent callers, each issuing its next call as soon as
the previous one returns, for a fixed time; latency and throughput over a measured window.

The first ``warmup_s`` seconds are discarded (connection set-up, caches, JIT-less Python
warming its dicts); only calls that start and finish inside the window are timed.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc

from bench._procs import cpu_s
from bench._report import Figure, Target, percentile

__all__ = ["LoadResult", "closed_loop", "load_figures", "rotated_load"]


@dataclass
class LoadResult:
    """What one closed-loop run measured."""

    concurrency: int
    window_s: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds each watched server process used during the window (by name)."""

    def cpu_ms_per_call(self, name: str) -> float:
        """Milliseconds of ``name``'s CPU per completed call in the window."""
        return 1000 * self.cpu_s[name] / self.completed if self.completed else float("nan")

    @property
    def completed(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        """Successful calls per second over the window."""
        return self.completed / self.window_s if self.window_s > 0 else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99)


async def closed_loop(
    call: Callable[[], Awaitable[Any]],
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 0.5,
    max_calls: int = 2_000_000,
    pids: Mapping[str, int] | None = None,
) -> LoadResult:
    """Run ``concurrency`` callers of ``call`` for ``warmup_s + duration_s`` seconds.

    A failed call (gRPC error) counts under its status code name and is not timed;
    ``max_calls`` bounds the total in case a call fails instantly in a tight loop.
    ``pids``: server processes whose CPU time over the window is recorded (`LoadResult.cpu_s`).
    """
    start = time.perf_counter()
    window_start = start + warmup_s
    window_end = window_start + duration_s
    result = LoadResult(concurrency=concurrency, window_s=duration_s)
    issued = 0

    async def caller() -> None:
        nonlocal issued
        while issued < max_calls:
            t0 = time.perf_counter()
            if t0 >= window_end:
                return
            issued += 1
            try:
                await call()
            except grpc.aio.AioRpcError as exc:
                if t0 >= window_start:
                    result.errors[exc.code().name] += 1
                continue
            t1 = time.perf_counter()
            if t0 >= window_start and t1 <= window_end:
                result.latencies_ms.append((t1 - t0) * 1000)

    async def cpu_meter(pid_map: Mapping[str, int]) -> None:
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        before = {name: cpu_s(pid) for name, pid in pid_map.items()}
        await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
        result.cpu_s = {name: cpu_s(pid) - before[name] for name, pid in pid_map.items()}

    meter = [cpu_meter(pids)] if pids else []
    await asyncio.gather(*(caller() for _ in range(concurrency)), *meter)
    return result


Call = Callable[[], Awaitable[Any]]


async def rotated_load(
    calls: Mapping[str, Call],
    *,
    concurrency: int,
    repeats: int,
    duration_s: float,
    warmup_s: float = 0.3,
    pids: Mapping[str, int] | None = None,
) -> dict[str, list[LoadResult]]:
    """``repeats`` closed-loop samples of each variant in ``calls``, back to back.

    The variant that goes first rotates each repeat, so a drift in the machine's load
    (other processes on a shared machine) falls on every variant alike. ``pids`` as in
    `closed_loop` (the same processes watched for every variant).
    """
    names = list(calls)
    samples: dict[str, list[LoadResult]] = {name: [] for name in names}
    for rep in range(repeats):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            result = await closed_loop(
                calls[name], concurrency=concurrency, duration_s=duration_s, warmup_s=warmup_s, pids=pids
            )
            samples[name].append(result)
    return samples


def load_figures(
    label: str,
    ours: list[LoadResult],
    ref: list[LoadResult],
    ref_label: str,
    throughput_target: Target | None,
    p99_target: Target | None = None,
) -> list[Figure]:
    """Throughput, p50 and p99 figures (``label`` + " throughput" ...) from paired load runs."""
    errors = sum((r.errors for r in ours), start=Counter[str]())
    ref_errors = sum((r.errors for r in ref), start=Counter[str]())
    note = f"errors: ours {dict(errors)}, reference {dict(ref_errors)}" if errors or ref_errors else ""
    return [
        Figure(
            f"{label} throughput",
            "req/s",
            [r.throughput for r in ours],
            [r.throughput for r in ref],
            ref_label,
            throughput_target,
            note,
        ),
        Figure(f"{label} p50", "ms", [r.p50_ms for r in ours], [r.p50_ms for r in ref], ref_label),
        Figure(
            f"{label} p99", "ms", [r.p99_ms for r in ours], [r.p99_ms for r in ref], ref_label, p99_target
        ),
    ]
