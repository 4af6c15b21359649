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
        for q in self._subs.get(event.run.run_id, ()):
            q.put_nowait(event)


@dataclass
class WorkflowStats:
    """Counters of one workflow since start-up (ListWorkflows and metrics)."""

    started: int = 0
    succeeded: int = 0
    failed: int = 0
    errors_by_category: collections.Counter[str] = field(default_factory=collections.Counter)

    def record_error(self, category: ErrorCategory) -> None:
        self.errors_by_category[category.value] += 1
