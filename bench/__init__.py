"""Side-by-side benchmarks (`python -m bench`, `make bench`): each figure beside a reference
measured in the same run, reported as medians and ratios."""

from bench._load import LoadResult, closed_loop
from bench._procs import ServerProcess, python_env, rss_mb, running
from bench._registry import Context, Skip, benchmark
from bench._report import Figure, Target, percentile

__all__ = [
    "Context",
    "Figure",
    "LoadResult",
    "ServerProcess",
    "Skip",
    "Target",
    "benchmark",
    "closed_loop",
    "percentile",
    "python_env",
    "rss_mb",
    "running",
]
