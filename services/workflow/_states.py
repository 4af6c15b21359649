"""Run lifecycle: the states a run can be in and the one function that moves between them.

Every state change of a run goes through `transition`; the store applies it inside the
same transaction that reads the current state, so two writers can never both move a run.
"""

from __future__ import annotations

import enum

from services.common import FailedPrecondition

__all__ = [
    "TERMINAL_STATES",
    "InvalidTransition",
    "RunState",
    "allowed_sources",
    "allowed_targets",
    "transition",
]


class RunState(enum.Enum):
    """Lifecycle state of one run (values match the proto enum names without prefix)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def terminal(self) -> bool:
        """True when no edge leaves this state."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.TIMED_OUT})

_S = RunState

# The whole lifecycle. Anything not listed is refused; terminal states have no exits.
_EDGES: frozenset[tuple[RunState, RunState]] = frozenset(
    {
        (_S.PENDING, _S.RUNNING),  # an executor claimed the run and starts an attempt
        (_S.PENDING, _S.CANCELLED),  # CancelRun before the run started (e.g. waiting for not_before)
        (_S.PENDING, _S.FAILED),  # could not start: workflow no longer registered after a restart
        (_S.PENDING, _S.TIMED_OUT),  # its deadline passed before an executor could start it
        (_S.RUNNING, _S.RUNNING),  # a new attempt (retry, or resume after a crash) of a running run
        (_S.RUNNING, _S.SUCCEEDED),  # the handler (or a fallback) returned a result
        (_S.RUNNING, _S.FAILED),  # the handler failed for good: retries and fallbacks exhausted
        (_S.RUNNING, _S.CANCELLED),  # CancelRun reached the running handler
        (_S.RUNNING, _S.TIMED_OUT),  # the run's deadline (timeout or the caller's) expired
    }
)


class InvalidTransition(FailedPrecondition):
    """A state change the lifecycle does not allow (e.g. cancelling a finished run)."""

    def __init__(self, current: RunState, target: RunState) -> None:
        super().__init__(f"run is {current.value}; it cannot become {target.value}")
        self.current, self.target = current, target


def allowed_targets(current: RunState) -> frozenset[RunState]:
    """States reachable from ``current`` in one step."""
    return frozenset(t for (s, t) in _EDGES if s is current)


_SOURCES = {target: frozenset(s for (s, t) in _EDGES if t is target) for target in RunState}


def allowed_sources(target: RunState) -> frozenset[RunState]:
    """States from which ``target`` can be reached in one step (stores check it in SQL)."""
    return _SOURCES[target]


def transition(current: RunState, target: RunState) -> RunState:
    """Return ``target`` if the edge ``current -> target`` exists, else raise InvalidTransition."""
    if (current, target) not in _EDGES:
        raise InvalidTransition(current, target)
    return target
