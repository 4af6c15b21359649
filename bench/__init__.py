"""Side-by-side benchmarks (`python -m bench`, `make bench`): each figure beside a reference
measured in the same run, reported as medians and ratios."""

from bench._load import LoadResult, closed_loop
from bench._procs import ServerProcess, python_env, rss_mb, running
from bench._registry import Context, Skip, benchmark
from bench._report import Figure, Target, percentile
from bench._stack import SECURITY, WORKFLOW, LocalStack, free_port, free_ports, wait_serving

__all__ = [
    "SECURITY",
    "WORKFLOW",
    "Context",
    "Figure",
    "LoadResult",
    "LocalStack",
    "ServerProcess",
    "Skip",
    "Target",
    "benchmark",
    "closed_loop",
    "free_port",
    "free_ports",
    "percentile",
    "python_env",
    "rss_mb",
    "running",
    "wait_serving",
]
