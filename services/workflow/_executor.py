"""Runs accepted runs: bulkhead -> deadline -> retry -> breaker -> attempt timeout -> handler.

On failure the workflow's fallback chain is tried, else the run ends FAILED with a
categorized error. Every state change is written to the store before it is published.

Crash safety: a run is leased to this executor's ``owner`` from creation on. At start-up
and then every ``poll_s`` the executor claims unfinished due runs (its own after a restart,
or any whose lease expired) and resumes them; ``ctx.step`` skips the steps they finished.
Shutdown cancels in-flight handlers without changing their runs, so they resume later;
only `cancel` (CancelRun) turns a cancellation into the CANCELLED state.

Fencing (`services.workflow._leases`): each execution holds its run's `Lease` (owner +
epoch) and every write it makes (state changes, step begin/finish) carries it; once the
lease moved the execution stops at its next await ("lease lost"), writing nothing more. A
write the store cannot take (a full disk) pauses it without burning the handler's retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from services.common import FailedPrecondition, NotFound, Now
from services.workflow._admission import Admission, Ticket
from services.workflow._catalogue import CatalogueEntry
from services.workflow._context import RunContext, StoreJournal, WorkflowDeps
from services.workflow._events import EventType, RunEvent, RunEvents, WorkflowStats
from services.workflow._history import HistoryEvent, HistoryType
from services.workflow._invocation import checked_result, fallback_change, invoke
from services.workflow._isolation import ProcessPool
from services.workflow._leases import LeaseKeeper
from services.workflow._model import ErrorCategory, LeaseLost, Run, RunChange, RunError
from services.workflow._policies import (
    BreakerOpen,
    CircuitBreaker,
    RetryPolicy,
    categorize,
    describe,
    with_deadline,
)
from services.workflow._registry import Workflow, WorkflowRegistry
from services.workflow._states import RunState
from services.workflow._store import RunStore
from services.workflow._telemetry import (
    attempt_span,
    breaker_rejected,
    record_transition,
    run_span,
)

__all__ = ["Executor"]

_log = logging.getLogger(__name__)


class Executor:
    """Executes runs of one replica (``owner``) under their workflows' policies."""

    def __init__(
        self,
        *,
        store: RunStore,
        registry: WorkflowRegistry,
        owner: str,
        clock: Now,
        monotonic: Now,
        deps: WorkflowDeps | None = None,
        pool: ProcessPool | None = None,
        lease_s: float = 30.0,
        poll_s: float = 1.0,
        max_result_bytes: int = 1 << 20,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.store, self.registry, self.owner = store, registry, owner
        self._clock, self._mono, self._sleep, self._rng = clock, monotonic, sleep, rng or random.Random()
        self._deps, self._pool = deps, pool
        self._poll_s, self.max_result_bytes = poll_s, max_result_bytes
        self.events = RunEvents()
        self.stats: dict[str, WorkflowStats] = {}
        self.admission = admission or Admission()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._retries: dict[str, RetryPolicy] = {}
        # Run ids with a live task here. Invariant: an id is added before the task's first
        # await and removed when it ends, so the claim loop never starts a run twice.
        self._active: dict[str, asyncio.Task[None]] = {}
        self._cancel_reasons: dict[str, str] = {}
        self.leases = LeaseKeeper(
            store=store,
            owner=owner,
            clock=clock,
            monotonic=monotonic,
            lease_s=lease_s,
            active=self._active,
            dispatch=lambda run, at: self.dispatch(run, confirmed_at=at),
        )
        self._background: list[asyncio.Task[None]] = []

    # -- policies per workflow -------------------------------------------------------------
    def breaker(self, wf: Workflow) -> CircuitBreaker:
        if wf.name not in self._breakers:
            b = wf.policy.breaker
            self._breakers[wf.name] = CircuitBreaker(
                wf.name, self._mono, b.window_s, b.min_calls, b.failure_rate, b.open_s, b.half_open_probes
            )
        return self._breakers[wf.name]

    def retry_policy(self, wf: Workflow) -> RetryPolicy:
        # Built once per workflow: its declared policy is frozen.
        retry = self._retries.get(wf.name)
        if retry is None:
            retry = self._retries[wf.name] = RetryPolicy(**wf.policy.retry.model_dump())
        return retry

    def stats_of(self, name: str) -> WorkflowStats:
        return self.stats.setdefault(name, WorkflowStats())

    def record_rejection(self, workflow: str, exc: BaseException) -> None:
        """Count a StartRun refused before a run existed (auth, validation, shedding)."""
        self.stats_of(workflow).record_error(categorize(exc))

    def catalogue(self) -> list[CatalogueEntry]:
        """Every registered workflow, by name: its declaration and its state here."""
        return [
            CatalogueEntry(wf, self.breaker(wf).state, self.stats_of(wf.name), self.admission.load(wf))
            for wf in self.registry.all()
        ]

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Resume this owner's unfinished runs, then keep claiming due runs and renewing leases
        (a first claim the store refuses, a full disk, is retried by the claim loop)."""
        try:
            await self.leases.claim_due()
        except Exception as exc:
            _log.warning("cannot resume runs yet (%s); the claim loop retries", exc)
        self._background = self.leases.loops(self._poll_s)

    async def stop(self) -> None:
        """Cancel background loops and in-flight runs; their runs stay resumable."""
        tasks = [*self._background, *self._active.values()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._background = []

    # -- entry points ------------------------------------------------------------------------
    def lease(self) -> tuple[str, float]:
        return self.leases.lease_fields()  # for a run this replica creates and executes at once

    def dispatch(
        self,
        run: Run,
        ticket: Ticket | None = None,
        *,
        confirmed_at: float | None = None,
        started: bool = False,
    ) -> None:
        """Start executing ``run`` under its lease, which this replica got when it created or
        claimed it (``confirmed_at``: monotonic time before that store call; default now),
        taking over ``ticket`` (its bulkhead reservation, from StartRun); without one (a
        claimed run) the execution reserves once it is due. ``started``: created with its
        first attempt started (`NewRun.started`; the ticket holds its execution slot)."""
        if run.run_id in self._active or run.terminal:
            return  # the caller's ticket, still held, is released by the caller
        self.leases.held.hold(run, at=confirmed_at)
        held = ticket.hand_over() if ticket is not None else Ticket(None)
        task = asyncio.create_task(self._execute(run, held, started), name=f"run-{run.run_id}")
        self._active[run.run_id] = task
        # A callback, not a ``finally``: a task cancelled before its first step (fenced off as
        # it was created) never runs its body, yet must leave _active and give back its ticket.
        task.add_done_callback(lambda done: self._ended(run.run_id, done, held))

    def _ended(self, run_id: str, task: asyncio.Task[None], ticket: Ticket) -> None:
        ticket.release()  # idempotent: the execution released it already unless it never ran
        if self._active.get(run_id) is task:
            del self._active[run_id]
        self._cancel_reasons.pop(run_id, None)
        again = self.leases.ended(run_id)
        if again is not None:
            self.dispatch(again)

    async def cancel(self, run_id: str, reason: str) -> Run:
        """Cancel a run: a running handler receives CancelledError; returns the run after it."""
        run = await self.store.get_run(run_id)
        if run.terminal:
            raise FailedPrecondition(f"run {run_id} is already {run.state.value}")
        task = self._active.get(run_id)
        if task is None:  # not executing here: just record the decision
            changed = await self.store.update_run(run_id, self._cancelled(reason))
            self.events.publish(RunEvent(EventType.STATE_CHANGED, changed))
            return changed
        self._cancel_reasons[run_id] = reason
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return await self.store.get_run(run_id)

    async def wait_terminal(self, run_id: str, within_s: float | None) -> Run:
        """The run once terminal, or as it is when ``within_s`` seconds pass."""
        ended = self.events.ended(run_id)
        try:
            return await self.until_ended(ended, await self.store.get_run(run_id), within_s)
        finally:
            self.events.forget(run_id, ended)

    async def until_ended(self, ended: asyncio.Future[Run], run: Run, within_s: float | None) -> Run:
        """``run`` once terminal (``ended`` from `RunEvents.ended`, taken before ``run`` was read
        or dispatched), or as the store has it when ``within_s`` passes."""
        if run.terminal:
            return run
        try:
            async with asyncio.timeout(within_s):
                return await ended
        except TimeoutError:
            return await self.store.get_run(run.run_id)

    # -- execution ---------------------------------------------------------------------------
    def _cancelled(self, reason: str) -> RunChange:
        return RunChange(RunState.CANCELLED, error=RunError(ErrorCategory.CANCELLED, reason or "cancelled"))

    async def _update(self, known: Run, change: RunChange) -> Run:
        """Write ``change`` of ``known`` (this execution's run) fenced by the lease held; the new
        run is derived from ``known`` (the lease keeps everyone else from changing it)."""
        # Shielded: a final state computed must reach the store even if we are cancelled now.
        run_id = known.run_id
        lease = self.leases.held.lease(run_id)
        run: Run = await self.leases.fenced(
            run_id, asyncio.shield(self.store.update_run(run_id, change, lease, known))
        )
        self._published(run)
        return run

    def _published(self, run: Run) -> None:
        """A state change of ``run`` is durable: count it and tell watchers."""
        record_transition(run.workflow, run.state.value)
        self.events.publish(RunEvent(EventType.STATE_CHANGED, run))

    async def _history(self, run_id: str, kind: HistoryType, **fields: Any) -> None:
        """Append an event only the executor sees, fenced by the lease held; shielded like state
        changes. The history is a record, not the run: a store error here is logged and the run
        goes on, but a refusal (the lease moved) stops the execution like any fenced write."""
        event = HistoryEvent(kind, at=self._clock(), **fields)
        try:
            await asyncio.shield(self.store.append_event(run_id, event, self.leases.held.lease(run_id)))
        except LeaseLost as exc:
            raise self.leases.lost(run_id, exc) from exc
        except Exception:
            _log.warning("run %s: history event %s not recorded", run_id, kind.value, exc_info=True)

    async def _execute(self, run: Run, ticket: Ticket, started: bool = False) -> None:
        # ``ticket`` is this task's: released exactly once when it ends (by ``with``).
        try:
            if run.not_before is not None and run.not_before > self._clock():
                await self._sleep(run.not_before - self._clock())
            try:
                wf = self.registry.get(run.workflow)
            except NotFound as exc:
                error = RunError(ErrorCategory.VALIDATION, exc.message)
                await self._finish(run, wf_name=run.workflow, change=RunChange(RunState.FAILED, error=error))
                return
            if not ticket.held:
                ticket = self.admission.readmit(wf)  # accepted earlier: never shed now
            with ticket:
                async with ticket.slot(run.priority):
                    with run_span(run.run_id, wf.name):
                        await self._run(run, wf, started)
        except asyncio.CancelledError:
            stopped = self.leases.stopped(run)  # fenced off or paused: nothing more written
            if stopped == "lost":
                self.stats_of(run.workflow).lease_lost += 1
            if stopped is not None:
                return
            reason = self._cancel_reasons.pop(run.run_id, None)
            if reason is None:
                raise  # shutdown: leave the run to be resumed
            await self._finish(run, wf_name=run.workflow, change=self._cancelled(reason))
        finally:
            ticket.release()  # if the workflow was unknown or the task ended before ``with``

    async def _finish(self, run: Run, *, wf_name: str, change: RunChange) -> None:
        change = checked_result(change, self.max_result_bytes)
        stats = self.stats_of(wf_name)
        if change.state is RunState.SUCCEEDED:
            stats.succeeded += 1
        else:
            stats.failed += 1
            if change.error is not None:
                stats.record_error(change.error.category)
        # Already terminal (cancelled elsewhere): that decision stands.
        with contextlib.suppress(FailedPrecondition):
            await self._update(run, change)

    async def _run(self, run: Run, wf: Workflow, started: bool = False) -> None:
        """Execute ``run``; ``started``: its first attempt was counted as it was created (the
        run is RUNNING, attempt 1 recorded), so that attempt writes no RUNNING update."""
        self.stats_of(wf.name).started += 1
        finished = {}
        if run.attempts > started or run.resumed:  # resumed or retried before: load its finished steps
            finished = {s.name: s.result for s in await self.store.get_steps(run.run_id) if s.completed}
        retry = self.retry_policy(wf).resumed(run.attempts - started)
        if retry is None:  # attempts interrupted again and again: the handler may end the process
            error = RunError(ErrorCategory.HANDLER, f"{run.attempts} attempts started, none finished")
            return await self._finish(run, wf_name=wf.name, change=RunChange(RunState.FAILED, error=error))
        last_attempt = run.attempts
        counted = started  # the next attempt is counted durably already

        async def attempt() -> Any:
            nonlocal last_attempt, counted
            if counted:
                counted, current = False, run
                self._published(run)
            else:
                current = await self._update(run, RunChange(RunState.RUNNING, attempt=True))
            last_attempt = current.attempts
            ctx = self._context(current, wf, current.attempts, finished)
            with attempt_span(run.run_id, wf.name, current.attempts):
                try:
                    return await self.breaker(wf).call(lambda: invoke(wf, ctx, self._pool))
                except Exception as exc:
                    kind = HistoryType.ATTEMPT_FAILED
                    if isinstance(exc, BreakerOpen):
                        breaker_rejected(run.run_id, wf.name, wf.name, exc.retry_after_s)
                        kind = HistoryType.BREAKER_OPEN
                    err = RunError(categorize(exc), describe(exc))
                    await self._history(run.run_id, kind, attempt=current.attempts, error=err)
                    self.events.publish(RunEvent(EventType.ATTEMPT_FAILED, current, error=err))
                    raise

        async def backoff(delay_s: float) -> None:
            await self._history(
                run.run_id, HistoryType.RETRY_SCHEDULED, attempt=last_attempt + 1, retry_delay_s=delay_s
            )
            await self._sleep(delay_s)

        try:
            result = await with_deadline(
                lambda: retry.call(
                    attempt, deadline=run.deadline, clock=self._clock, sleep=backoff, rng=self._rng
                ),
                run.deadline,
                self._clock,
            )
        except TimeoutError as exc:
            if run.deadline is not None and self._clock() >= run.deadline:
                timed_out = RunError(ErrorCategory.TIMEOUT, "run deadline exceeded")
            else:
                timed_out = RunError(ErrorCategory.TIMEOUT, f"attempt timed out ({describe(exc)})")
            await self._finish(run, wf_name=wf.name, change=RunChange(RunState.TIMED_OUT, error=timed_out))
            return
        except Exception as exc:
            change = await fallback_change(
                run, wf, exc, registry=self.registry, record=self._history, call_other=self._invoke_fallback
            )
            await self._finish(run, wf_name=wf.name, change=change)
            return
        await self._finish(run, wf_name=wf.name, change=RunChange(RunState.SUCCEEDED, result=result))

    def _journal(self, run: Run) -> StoreJournal:
        """Step writes of ``run`` fenced by the lease this execution holds."""
        return StoreJournal(
            self.store,
            self.events,
            run,
            self.max_result_bytes,
            lease=lambda: self.leases.held.lease(run.run_id),
            fenced=lambda write: self.leases.fenced(run.run_id, write),
            check_live=lambda: self.leases.check_live(run.run_id),
        )

    async def _invoke_fallback(self, run: Run, other: Workflow) -> Any:
        """One attempt of a fallback workflow through its own breaker (no retries, no fallbacks)."""
        ctx = self._context(run, other, 1, {})
        return await self.breaker(other).call(lambda: invoke(other, ctx, self._pool))

    def _context(self, run: Run, wf: Workflow, attempt: int, finished: dict[str, Any]) -> RunContext:
        """What a handler of ``wf`` sees of ``run`` (as this execution last wrote it)."""
        return RunContext(
            run_id=run.run_id,
            workflow=wf.name,
            principal=run.principal,
            params=run.params,
            attempt=attempt,
            deadline=run.deadline,
            finished_steps=finished,
            journal=self._journal(run),
            deps=self._deps,
            clock=self._clock,
            fencing_token=run.lease_epoch,
        )
