"""In-process run events (for WatchRun and StartRun's wait) and per-workflow counters."""

from __future__ import annotations

import asyncio
import collections
import enum
from dataclasses import dataclass, field

from services.workflow._model import ErrorCategory, Run, RunError

__all__ = ["EventType", "RunEvent", "RunEvents", "WorkflowStats"]


class EventType(enum.Enum):
    SNAPSHOT = "SNAPSHOT"
    STATE_CHANGED = "STATE_CHANGED"
    STEP_FINISHED = "STEP_FINISHED"
    ATTEMPT_FAILED = "ATTEMPT_FAILED"


@dataclass(frozen=True)
class RunEvent:
    type: EventType
    run: Run
    step: str = ""
    error: RunError | None = None


class RunEvents:
    """Fan-out of run events to subscribers of one run id.

    Queues are unbounded on purpose: each run produces a bounded number of events (one per
    state change, step and failed attempt), and a slow watcher must not block the executor.
    """

    def __init__(self) -> None:
        self._subs: dict[str, set[asyncio.Queue[RunEvent]]] = collections.defaultdict(set)
        # Waiters for a run's terminal state only (StartRun's wait): one future each, resolved
        # once, instead of a queue woken by every event of the run.
        self._ends: dict[str, list[asyncio.Future[Run]]] = {}

    def ended(self, run_id: str) -> asyncio.Future[Run]:
        """A future set to the run when a terminal STATE_CHANGED is published (call `forget`)."""
        fut: asyncio.Future[Run] = asyncio.get_running_loop().create_future()
        self._ends.setdefault(run_id, []).append(fut)
        return fut

    def forget(self, run_id: str, fut: asyncio.Future[Run]) -> None:
        waiters = self._ends.get(run_id)
        if waiters is not None and fut in waiters:
            waiters.remove(fut)
            if not waiters:
                del self._ends[run_id]

    def subscribe(self, run_id: str) -> asyncio.Queue[RunEvent]:
        q: asyncio.Queue[RunEvent] = asyncio.Queue()
        self._subs[run_id].add(q)
        return q

    def unsubscribe(self, run_id: str, q: asyncio.Queue[RunEvent]) -> None:
        subs = self._subs.get(run_id)
        if subs is not None:
            subs.discard(q)
            if not subs:
                del self._subs[run_id]

    def publish(self, event: RunEvent) -> None:
        run = event.run
        for q in self._subs.get(run.run_id, ()):
            q.put_nowait(event)
        if event.type is EventType.STATE_CHANGED and run.terminal:
            for fut in self._ends.pop(run.run_id, ()):
                if not fut.done():
                    fut.set_result(run)


@dataclass
class WorkflowStats:
    """Counters of one workflow since start-up (ListWorkflows and metrics)."""

    started: int = 0
    succeeded: int = 0
    failed: int = 0
    lease_lost: int = 0
    """Executions stopped here because another replica took the run over."""
    errors_by_category: collections.Counter[str] = field(default_factory=collections.Counter)

    def record_error(self, category: ErrorCategory) -> None:
        self.errors_by_category[category.value] += 1
