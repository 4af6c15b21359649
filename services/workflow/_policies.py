"""Resilience policies as small composable objects with injectable clock, sleep and randomness.

The executor composes them as bulkhead -> timeout -> retry -> breaker -> handler. None of
them holds a lock across an await: asyncio runs them on one thread, so their bookkeeping
between awaits is already atomic.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc
import tenacity

from services.common import (
    Cancelled,
    DeadlineExceeded,
    InvalidArgument,
    Now,
    PermissionDenied,
    ResourceExhausted,
    Sleep,
    Unauthenticated,
    Unavailable,
    VigilError,
    rpc_code,
)
from services.workflow._model import ErrorCategory

__all__ = [
    "BreakerOpen",
    "BreakerState",
    "CircuitBreaker",
    "RetryPolicy",
    "categorize",
    "counts_against_breaker",
    "describe",
    "is_retryable",
    "with_deadline",
]

T = TypeVar("T")


class BreakerOpen(Unavailable):
    """The circuit breaker rejected the call without running it."""

    def __init__(self, name: str, retry_after_s: float) -> None:
        super().__init__(f"circuit breaker {name!r} is open; retry in {retry_after_s:.1f}s", retry_after_s)
        self.retry_after_s: float = retry_after_s


def categorize(exc: BaseException) -> ErrorCategory:
    """The error category of a failure; drives retries and analytics (breakers count by
    `counts_against_breaker`)."""
    if isinstance(exc, asyncio.CancelledError | Cancelled):
        return ErrorCategory.CANCELLED
    if isinstance(exc, TimeoutError | DeadlineExceeded):
        return ErrorCategory.TIMEOUT
    if isinstance(exc, InvalidArgument):
        return ErrorCategory.VALIDATION
    if isinstance(exc, Unauthenticated | PermissionDenied):
        return ErrorCategory.AUTH
    if isinstance(exc, Unavailable):
        return ErrorCategory.DEPENDENCY
    if isinstance(exc, ResourceExhausted | MemoryError):
        return ErrorCategory.RESOURCE
    return ErrorCategory.HANDLER


_TRANSPORT_FAILURES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)


def counts_against_breaker(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the callee (counted by a breaker) or an answer (not).

    Failures: an unreachable or overloaded dependency (`Unavailable`, a gRPC UNAVAILABLE /
    DEADLINE_EXCEEDED / RESOURCE_EXHAUSTED, connection errors), a timeout, and a handler
    crashing with an unexpected exception. Answers: every other `VigilError` (NOT_FOUND,
    INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED, ALREADY_EXISTS,
    FAILED_PRECONDITION, ...) is the callee's verdict on one caller's request, and a
    RESOURCE_EXHAUSTED carrying the server's RetryInfo is one caller's rate limit: counting
    them would let one caller's bad requests refuse everyone's good ones. Cancellation is
    the caller's doing.
    """
    if isinstance(exc, asyncio.CancelledError | Cancelled):
        return False
    if isinstance(exc, TimeoutError | DeadlineExceeded | Unavailable | OSError | MemoryError):
        return True  # OSError: connection refused/reset and the like
    if isinstance(exc, ResourceExhausted):
        # `advised` (set by from_rpc_error when the server named a delay): a verdict on one
        # caller. Without the attribute every RESOURCE_EXHAUSTED counts.
        return not getattr(exc, "advised", False)
    if isinstance(exc, grpc.RpcError):
        return rpc_code(exc) in _TRANSPORT_FAILURES
    return not isinstance(exc, VigilError)  # an unexpected handler exception is a failure


def is_retryable(exc: BaseException) -> bool:
    """Whether another attempt could succeed.

    Transient faults are: an unreachable dependency, an attempt that timed out, and an
    unexpected exception of the handler. A `VigilError` a handler raises on purpose (e.g.
    FailedPrecondition) is a decision, and an open breaker says "not now": neither is retried.
    """
    if isinstance(exc, BreakerOpen):
        return False
    category = categorize(exc)
    if category in (ErrorCategory.DEPENDENCY, ErrorCategory.TIMEOUT):
        return True
    return category is ErrorCategory.HANDLER and not isinstance(exc, VigilError)


async def with_deadline(fn: Callable[[], Awaitable[T]], deadline: float | None, clock: Now) -> T:
    """Run ``fn`` and cancel it when the wall-clock ``deadline`` passes (TimeoutError)."""
    if deadline is None:
        return await fn()
    remaining = deadline - clock()
    if remaining <= 0:
        raise TimeoutError("deadline already passed")
    async with asyncio.timeout(remaining):
        return await fn()


INTERRUPT_GRACE = 2
"""Attempts of one run a crash or shutdown may interrupt beyond ``max_attempts``."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and by the deadline.

    The wait before attempt n+1 is uniform in [0, min(max_backoff_s, initial_backoff_s *
    multiplier**(n-1))]. No retry starts if its wait would end past the deadline, so a
    caller's remaining deadline bounds the retries.
    """

    max_attempts: int = 3
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 5.0
    multiplier: float = 2.0

    def resumed(self, started_before: int) -> RetryPolicy | None:
        """The policy of an execution resuming a run that started ``started_before`` attempts
        already, or None when its budget is spent.

        Every attempt is counted durably before it runs, including those a crash or a shutdown
        then interrupted, so a handler that ends the process is not resumed forever: a resumed
        run gets what is left of ``max_attempts``, with `INTERRUPT_GRACE` interruptions (a
        deploy, a lost node) forgiven."""
        left = min(self.max_attempts, self.max_attempts + INTERRUPT_GRACE - started_before)
        if left <= 0:
            return None
        return self if left == self.max_attempts else dataclasses.replace(self, max_attempts=left)

    def backoff_cap(self, attempt: int) -> float:
        """Largest wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        deadline: float | None = None,
        clock: Now,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> T:
        """Call ``fn`` until it succeeds, fails with a non-retryable category, or the budget ends.

        The last failure is re-raised unchanged.
        """
        pick = rng or random.Random()

        def wait_after(attempt: int) -> float:
            return pick.uniform(0.0, self.backoff_cap(attempt))

        def give_up(attempt: int, upcoming_sleep: float) -> bool:
            if attempt >= self.max_attempts:
                return True
            return deadline is not None and clock() + upcoming_sleep >= deadline

        # Fast path: the first attempt runs without the retry machinery, which only starts
        # (for attempts 2..n, tenacity's attempt k being ours k + 1) after a retryable failure.
        try:
            return await fn()
        except Exception as exc:
            first_wait = wait_after(1)
            if not is_retryable(exc) or give_up(1, first_wait):
                raise
        await sleep(first_wait)
        retrying = tenacity.AsyncRetrying(
            stop=lambda rs: give_up(rs.attempt_number + 1, rs.upcoming_sleep),
            wait=lambda rs: wait_after(rs.attempt_number + 1),
            sleep=sleep,
            retry=tenacity.retry_if_exception(is_retryable),
            reraise=True,
        )
        return await retrying(fn)


class BreakerState(enum.Enum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


_B = BreakerState
_BREAKER_EDGES = frozenset(
    {
        (_B.CLOSED, _B.OPEN),  # failure rate over the window crossed the threshold with enough calls
        (_B.OPEN, _B.HALF_OPEN),  # open_s elapsed: let a few probe calls through
        (_B.HALF_OPEN, _B.CLOSED),  # enough probes succeeded: the callee recovered
        (_B.HALF_OPEN, _B.OPEN),  # a probe failed: back off for another open_s
    }
)


def _breaker_transition(current: BreakerState, target: BreakerState) -> BreakerState:
    if (current, target) not in _BREAKER_EDGES:
        raise ValueError(f"breaker cannot go from {current.value} to {target.value}")
    return target


@dataclass
class CircuitBreaker:
    """Failure-rate circuit breaker over a sliding time window (asyncio-native, lock-free).

    Args:
        name: Shown in errors and metrics (the workflow or dependency).
        window_s: Length of the sliding window of recorded outcomes.
        min_calls: Calls needed in the window before the rate is judged.
        failure_rate: Fraction of failures (0..1] in the window that opens the breaker.
        open_s: How long it stays open before probing.
        half_open_probes: Probes allowed at once in HALF_OPEN; that many successes close it.
        clock: Monotonic seconds.
    """

    name: str
    clock: Now
    window_s: float = 30.0
    min_calls: int = 10
    failure_rate: float = 0.5
    open_s: float = 10.0
    half_open_probes: int = 1
    state: BreakerState = BreakerState.CLOSED
    on_change: Callable[[str, BreakerState], None] | None = None
    # Outcomes in the window, oldest first, and how many of them are failures (kept in step
    # with the deque so judging the rate is O(1), not O(calls in the window)).
    _outcomes: collections.deque[tuple[float, bool]] = field(default_factory=collections.deque)
    _failures: int = 0
    _opened_at: float = 0.0
    _probes_in_flight: int = 0
    _probe_successes: int = 0

    def _move(self, target: BreakerState) -> None:
        self.state = _breaker_transition(self.state, target)
        if target is BreakerState.OPEN:
            self._opened_at = self.clock()
            self._outcomes.clear()
            self._failures = 0
        if target is BreakerState.HALF_OPEN:
            self._probes_in_flight = self._probe_successes = 0
        if self.on_change is not None:
            self.on_change(self.name, target)

    def _admit(self) -> bool:
        """Let a call through or raise BreakerOpen; returns True when the call is a probe."""
        if self.state is BreakerState.OPEN:
            waited = self.clock() - self._opened_at
            if waited < self.open_s:
                raise BreakerOpen(self.name, self.open_s - waited)
            self._move(BreakerState.HALF_OPEN)
        if self.state is BreakerState.HALF_OPEN:
            if self._probes_in_flight >= self.half_open_probes:
                raise BreakerOpen(self.name, self.open_s)
            self._probes_in_flight += 1
            return True
        return False

    def _record(self, failed: bool, probe: bool) -> None:
        now = self.clock()
        if probe:
            self._probes_in_flight -= 1
            if self.state is not BreakerState.HALF_OPEN:
                return  # another probe already decided
            if failed:
                self._move(BreakerState.OPEN)
            else:
                self._probe_successes += 1
                if self._probe_successes >= self.half_open_probes:
                    self._move(BreakerState.CLOSED)
            return
        if self.state is not BreakerState.CLOSED:
            return
        self._outcomes.append((now, failed))
        self._failures += failed
        while self._outcomes and self._outcomes[0][0] <= now - self.window_s:
            self._failures -= self._outcomes.popleft()[1]
        total = len(self._outcomes)
        if total >= self.min_calls and self._failures / total >= self.failure_rate:
            self._move(BreakerState.OPEN)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` through the breaker; raises BreakerOpen while open."""
        probe = self._admit()
        try:
            result = await fn()
        except BaseException as exc:
            if counts_against_breaker(exc):
                self._record(True, probe)
            elif probe:  # not the callee's fault: give the probe slot back, decide nothing
                self._probes_in_flight -= 1
            raise
        self._record(False, probe)
        return result


def describe(exc: BaseException) -> str:
    """Message for a run's error: a VigilError's own message, else ``Type: text``."""
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return message
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
