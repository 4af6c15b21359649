"""What a handler sees: its params, attempt number, deadline and durable steps."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from services.common import ResourceExhausted
from services.workflow._events import EventType, RunEvent, RunEvents
from services.workflow._model import Lease, Run, RunError, canonical_json
from services.workflow._policies import categorize, describe
from services.workflow._store import RunStore
from services.workflow._telemetry import step_span

__all__ = ["RunContext", "StepJournal", "StoreJournal", "WorkflowDeps"]


class WorkflowDeps(Protocol):
    """Services a handler may call (the security service client implements it)."""

    async def verify_artifact(self, path: str, sha256: str) -> dict[str, Any]:
        """Ask the security service to hash ``path`` and compare it with ``sha256``."""


class StepJournal(Protocol):
    """Where steps are persisted (the executor binds it to the run store)."""

    async def begin(self, name: str) -> None: ...

    async def finish(self, name: str, result_json: str) -> None:
        """Persist the result of step ``name``, given as its `canonical_json` text."""

    async def fail(self, name: str, exc: Exception) -> None: ...


class StoreJournal:
    """The executor's `StepJournal`: steps go to the run store, finished ones to watchers too.

    Every write (begin, finish, fail) carries ``lease()`` (the execution's lease as of that write) and goes
    through ``fenced`` (the executor's: a refused write ends the execution). `begin` is
    committed before the step's body starts, so the step's ``executions`` counts every
    start; ``check_live`` then vouches that the lease is still this replica's as the body
    starts.
    """

    def __init__(
        self,
        store: RunStore,
        events: RunEvents,
        run: Run,
        max_result_bytes: int,
        *,
        lease: Callable[[], Lease | None] = lambda: None,
        fenced: Callable[[Awaitable[Any]], Awaitable[Any]] | None = None,
        check_live: Callable[[], None] = lambda: None,
    ) -> None:
        self._store, self._events, self._run, self._max = store, events, run, max_result_bytes
        self._lease = lease
        self._fenced = fenced or (lambda write: write)
        self._check_live = check_live

    async def begin(self, name: str) -> None:
        await self._fenced(self._store.begin_step(self._run.run_id, name, self._lease()))
        self._check_live()  # the body starts right after this, without another await

    async def finish(self, name: str, result_json: str) -> None:
        size = len(result_json.encode())
        if size > self._max:  # GetRun returns steps: keep them bounded like results
            raise ResourceExhausted(f"step {name!r} result of {size} bytes exceeds the limit of {self._max}")
        await self._fenced(self._store.record_step(self._run.run_id, name, result_json, self._lease()))
        self._events.publish(RunEvent(EventType.STEP_FINISHED, self._run, step=name))

    async def fail(self, name: str, exc: Exception) -> None:
        error = RunError(categorize(exc), describe(exc))
        await self._fenced(self._store.fail_step(self._run.run_id, name, error, self._lease()))


class RunContext:
    """Per-attempt context passed to an inline handler.

    Attributes:
        run_id, workflow, principal: Identity of the run.
        params: The sanitized params (as the security service returned them).
        attempt: 1-based attempt number, counted durably across restarts.
        deadline: Wall-clock deadline of the run, or None.
        deps: Clients of other services (security's VerifyArtifact).
        fencing_token: The lease epoch this execution holds (grows with every takeover of
            the run): pass it to external systems that can refuse a write carrying an older
            token, so a replica whose lease moved cannot overwrite its successor's effects.
    """

    def __init__(
        self,
        *,
        run_id: str,
        workflow: str,
        principal: str,
        params: dict[str, Any],
        attempt: int,
        deadline: float | None,
        finished_steps: dict[str, Any],
        journal: StepJournal,
        deps: WorkflowDeps | None,
        clock: Callable[[], float],
        fencing_token: int = 0,
    ) -> None:
        self.run_id, self.workflow, self.principal = run_id, workflow, principal
        self.params, self.attempt, self.deadline, self.deps = params, attempt, deadline, deps
        # Shared with the executor across the attempts of one execution (not copied), so a retry
        # skips the steps an earlier attempt finished, as a resume after a crash does.
        self._finished = finished_steps
        self._journal = journal
        self.fencing_token = fencing_token
        self._clock = clock

    def remaining(self) -> float | None:
        """Seconds until the run's deadline (None when it has none)."""
        return None if self.deadline is None else self.deadline - self._clock()

    async def step(self, name: str, fn: Callable[[], Awaitable[Any] | Any]) -> Any:
        """Run ``fn`` once per run: a finished step returns its persisted result on resume.

        The result must be JSON-serializable; it is persisted before this returns, so a crash
        after it never re-executes the step (before it: the step runs again, at least once).
        """
        if name in self._finished:
            return self._finished[name]
        await self._journal.begin(name)
        try:
            with step_span(self.run_id, self.workflow, name):
                value = fn()
                if inspect.isawaitable(value):
                    value = await value
        except Exception as exc:  # recorded in the run's history, then the attempt fails as before
            await asyncio.shield(self._journal.fail(name, exc))
            raise
        text = canonical_json(value)  # fail here, in the step, when the result is not JSON
        # Shielded: a cancellation arriving now must not lose a result already computed.
        await asyncio.shield(self._journal.finish(name, text))
        self._finished[name] = value
        return value
