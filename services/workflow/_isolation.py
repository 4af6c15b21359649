"""Process isolation: synchronous handlers run in worker processes with CPU and memory limits.

The limits are set per attempt inside the worker with ``resource.setrlimit``: RLIMIT_CPU's
soft limit is the worker's CPU time so far plus the attempt's budget (the kernel sends
SIGXCPU when it is reached, which we turn into an exception inside the handler), and
RLIMIT_AS's soft limit is the worker's current address space plus the attempt's budget (an
allocation beyond it raises MemoryError). Both are reset afterwards so the worker can be
reused. A worker that dies anyway (killed, segfault) breaks only the attempts it was
running; the pool is rebuilt and the service stays up. The event loop only awaits futures.

A handler blocked on the wall clock (sleep, I/O) uses no CPU, so RLIMIT_CPU alone would
let it outlive its attempt. Each attempt therefore also gets a wall-clock budget (the
attempt's timeout, bounded by the run deadline): an ITIMER_REAL timer in the worker raises
inside the handler when it expires, like SIGXCPU, and frees the worker.

Known limit: cancelling an attempt stops waiting for it at once; the worker already running
it is freed when the attempt's wall-clock budget ends, not at the moment of the cancel.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import resource
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import FrameType
from typing import Any

from services.common import DeadlineExceeded, ResourceExhausted, VigilError

__all__ = ["HandlerFailed", "ProcessPool", "ResourceLimitExceeded"]


class ResourceLimitExceeded(ResourceExhausted):
    """A process-isolated attempt exceeded its CPU-time or memory limit, or its worker died."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after_s=0.0)


class HandlerFailed(RuntimeError):
    """An exception of a process-isolated handler, carried back as text (it may not pickle)."""


class _CpuTimeExceeded(BaseException):
    """Raised by the SIGXCPU handler; a BaseException so a handler's ``except Exception`` can't eat it."""


class _WallTimeExceeded(BaseException):
    """Raised by the SIGALRM handler when the attempt's wall-clock budget is spent."""


def _on_sigxcpu(_signum: int, _frame: FrameType | None) -> None:
    raise _CpuTimeExceeded


def _on_sigalrm(_signum: int, _frame: FrameType | None) -> None:
    raise _WallTimeExceeded


# The worker's timer fires this much after the parent's own attempt timeout, so the parent's
# timeout decides the attempt's outcome and the timer only frees the worker.
_WALL_GRACE_S = 0.5


def _worker_init() -> None:
    signal.signal(signal.SIGXCPU, _on_sigxcpu)
    signal.signal(signal.SIGALRM, _on_sigalrm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


def _address_space_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise OSError("VmSize missing from /proc/self/status")


def _run_in_worker(ref: str, params: Any, cpu_time_s: int, memory_mb: int, wall_time_s: float | None) -> Any:
    from services.workflow._model import canonical_json
    from services.workflow._registry import resolve_ref

    fn = resolve_ref(ref)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_used = math.ceil(usage.ru_utime + usage.ru_stime)
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    _, as_hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_used + cpu_time_s, cpu_hard))
    resource.setrlimit(resource.RLIMIT_AS, (_address_space_bytes() + (memory_mb << 20), as_hard))
    try:
        if wall_time_s is not None:
            signal.setitimer(signal.ITIMER_REAL, max(0.0, wall_time_s) + _WALL_GRACE_S)
        result = fn(params)
        signal.setitimer(signal.ITIMER_REAL, 0)
        canonical_json(result)
        return result
    except _WallTimeExceeded:
        raise DeadlineExceeded(f"attempt exceeded its wall-clock budget of {wall_time_s}s") from None
    except _CpuTimeExceeded:
        raise ResourceLimitExceeded(f"CPU time limit of {cpu_time_s}s exceeded") from None
    except MemoryError:
        raise ResourceLimitExceeded(f"memory limit of {memory_mb} MB exceeded") from None
    except VigilError:
        raise
    except Exception as exc:  # any handler fault: reported as text, the worker lives on
        raise HandlerFailed(f"{type(exc).__name__}: {exc}") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)  # a timer left running would hit the next attempt
        resource.setrlimit(resource.RLIMIT_AS, (as_hard, as_hard))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_hard, cpu_hard))


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """SIGKILL every live worker of ``pool`` (no public terminate before Python 3.14); call it
    before ``shutdown``, which drops the pool's record of its workers."""
    for proc in list((pool._processes or {}).values()):  # None once shut down
        if proc.exitcode is None:
            proc.kill()


class ProcessPool:
    """A lazily started pool of worker processes (forkserver: never fork the gRPC parent)."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _get(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=_worker_init,
            )
        return self._pool

    async def run(
        self, ref: str, params: Any, *, cpu_time_s: int, memory_mb: int, wall_time_s: float | None = None
    ) -> Any:
        """Run ``ref(params)`` in a worker; raises ResourceLimitExceeded, DeadlineExceeded (the
        wall-clock budget ``wall_time_s`` ran out) or the handler's error."""
        pool = self._get()
        try:
            return await asyncio.wrap_future(
                pool.submit(_run_in_worker, ref, params, cpu_time_s, memory_mb, wall_time_s)
            )
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = None
                # On Python 3.11 a pool that breaks while another attempt is being submitted
                # may spawn a worker after terminating the others; its manager thread then
                # joins that idle worker forever, and the process cannot exit. Kill what is
                # left first: shutdown forgets the workers (``_processes`` becomes None).
                _kill_workers(pool)
                pool.shutdown(wait=False, cancel_futures=True)
            raise ResourceLimitExceeded("worker process died while running the handler") from None

    def shutdown(self) -> None:
        """Stop the workers at once (blocking briefly); the pool starts afresh if used again.

        Workers are killed rather than awaited: a handler may run until its CPU limit, and
        shutdown must not wait for it. Callers stop awaiting attempts first (the executor is
        stopped before the pool), so no run is failed by this.
        """
        pool, self._pool = self._pool, None
        if pool is not None:
            _kill_workers(pool)
            pool.shutdown(wait=True, cancel_futures=True)

    async def close(self) -> None:
        await asyncio.to_thread(self.shutdown)
