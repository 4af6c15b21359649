"""The benchmark registry: `@benchmark` functions, their run context, and skipping.

A benchmark is ``async def fn(ctx: Context) -> list[Figure]``. It starts what it needs
(servers in their own processes), measures ours and the reference alternately
``ctx.repeats`` times so drift in machine load hits both alike, and returns figures
holding every sample; the harness reports medians and ratios. A benchmark whose
subject has not been built yet raises `Skip` with the reason.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench._report import Figure

__all__ = ["MODULES", "Benchmark", "Context", "Skip", "benchmark", "load_all", "registry"]

# Modules holding benchmarks, imported in this order (which is also the table's order).
MODULES = (
    "bench.health",
    "bench.services",
    "bench.screen_stream",
    "bench.healthd_bench",
    "bench.dashboard_bench",
    "bench.runstore",
    "bench.screening",
)


class Skip(Exception):
    """The benchmark cannot run here (its subject is not built yet, a tool is missing)."""


@dataclass(frozen=True)
class Context:
    """Run settings handed to every benchmark.

    Attributes:
        quick: Shorter windows and fewer repeats (a smoke run, not for conclusions).
        repeats: Samples per figure (each sample alternates ours and the reference).
    """

    quick: bool = False
    repeats: int = 5

    def seconds(self, full: float) -> float:
        """A measurement window: ``full`` normally, a quarter of it (>= 0.3 s) when quick."""
        return max(0.3, full / 4) if self.quick else full

    def log(self, message: str) -> None:
        print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


BenchFn = Callable[[Context], Awaitable[list[Figure]]]


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    fn: BenchFn


_REGISTRY: dict[str, Benchmark] = {}


def benchmark(name: str, description: str) -> Callable[[BenchFn], BenchFn]:
    """Register ``fn`` under ``name`` (unique)."""

    def register(fn: BenchFn) -> BenchFn:
        if name in _REGISTRY:
            raise ValueError(f"benchmark {name!r} registered twice")
        _REGISTRY[name] = Benchmark(name, description, fn)
        return fn

    return register


def load_all() -> None:
    for module in MODULES:
        importlib.import_module(module)


def registry() -> dict[str, Benchmark]:
    """Every registered benchmark, in registration order."""
    return dict(_REGISTRY)
