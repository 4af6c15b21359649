"""The workflow service's operations in domain terms (the servicer only translates protobuf).

StartRun order, cheapest refusal first: request limits -> workflow known -> not READ_ONLY
(UNAVAILABLE + RetryInfo) -> Screen (authn, authz, validation, sanitization; fail closed)
-> degradation admission -> bulkhead admission (shed) -> persist (committed) -> dispatch -> optionally wait.
A refusal because a dependency is down (security unreachable, the store down) is UNAVAILABLE
with a retry delay; FAILED_PRECONDITION is never used for a state the caller cannot change.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf.struct_pb2 import Struct

from services.common import (
    INLINE_ONLY,
    DegradationLevel,
    FailedPrecondition,
    NotFound,
    Offload,
    Unavailable,
)
from services.workflow._catalogue import CatalogueEntry
from services.workflow._config import LimitsConfig
from services.workflow._degradation import DegradationGate
from services.workflow._events import EventType, RunEvent
from services.workflow._executor import Executor
from services.workflow._history import HistoryEvent
from services.workflow._model import NewRun, Run, RunPage, RunQuery, StepRecord, request_hash
from services.workflow._paging import decode_page_token, encode_page_token
from services.workflow._policy_config import WorkflowPolicy
from services.workflow._redaction import IdempotencyKeys, redact_labels
from services.workflow._registry import Workflow
from services.workflow._requests import StartRequest, check_run_id, check_start, check_text, violation
from services.workflow._security_client import Caller, Screened
from services.workflow._telemetry import current_trace_id

__all__ = ["Authenticates", "Operations", "Screener", "StartRequest", "StartResult"]


class Authenticates(Protocol):
    async def authenticate(self, token: str, remaining_s: float | None = None) -> Caller: ...


class Screener(Authenticates, Protocol):
    async def screen(
        self,
        *,
        token: str,
        workflow: str,
        params: dict[str, Any],
        policy: WorkflowPolicy,
        request_id: str,
        remaining_s: float | None = None,
        params_message: Struct | None = None,
    ) -> Screened: ...


@dataclass(frozen=True)
class StartResult:
    run: Run
    created: bool


# Run ids must be unique, not secret (reads are checked against the run's principal), so a
# PRNG seeded from the OS replaces a urandom syscall per run (~40 us on busy VMs).
_ids = random.Random(os.urandom(32))


def _new_run_id() -> str:
    return f"{_ids.getrandbits(128):032x}"


def _within_budget(page: RunPage, size_of: Callable[[Run], int], budget_bytes: int) -> RunPage:
    """``page`` cut short before the run whose ``size_of`` takes it past ``budget_bytes``
    (at least one run); the next page then continues after the last run kept."""
    total = 0
    for i, run in enumerate(page.runs):
        total += size_of(run)
        if total > budget_bytes and i > 0:
            return RunPage(runs=page.runs[:i], next_seq=page.runs[i - 1].seq)
    return page


class Operations:
    """Start, read, watch and cancel runs; the workflow catalogue."""

    def __init__(
        self,
        *,
        executor: Executor,
        security: Screener,
        gate: DegradationGate,
        limits: LimitsConfig,
        clock: Callable[[], float],
        readers: Authenticates | None = None,
        idempotency: IdempotencyKeys | None = None,
        offload: Offload | None = None,
    ) -> None:
        self.executor, self.security, self.gate, self.limits, self._clock = (
            executor,
            security,
            gate,
            limits,
            clock,
        )
        # Who verifies callers of reads: local key material when configured, else security.
        self._readers: Authenticates = readers or security
        # Tests without a deployment secret get a per-instance random one.
        self.idempotency = idempotency or IdempotencyKeys(os.urandom(32))
        self.store, self.registry = executor.store, executor.registry
        self._offload = offload or INLINE_ONLY  # where the checks of large params run

    async def start(self, req: StartRequest, *, token: str, remaining_s: float | None) -> StartResult:
        """Screen, persist and dispatch a run (see the module docstring for the order)."""
        await self._offload.run(req.params_bytes, check_start, req, self.limits, self._clock())
        wf = self.registry.get(req.workflow)
        try:
            self.gate.check_writable()
            run_id = _new_run_id()
            try:
                screened = await self.security.screen(
                    token=token,
                    workflow=wf.name,
                    params=req.params,
                    policy=wf.policy,
                    request_id=run_id,
                    remaining_s=remaining_s,
                    params_message=req.params_message,
                )
            except Unavailable:
                # Our own dependency view: without security no run can start (fail closed).
                self.gate.set_dependency("security", DegradationLevel.DEGRADED)
                raise
            self.gate.set_dependency("security", None)
            priority = req.priority or wf.policy.priority
            level = self.gate.admit(priority=priority, privileged=screened.privileged)
            now = self._clock()
            scheduled = req.not_before is not None and req.not_before > now
            # Sheds with ResourceExhausted when full; from here on the ticket owns the slot.
            ticket = self.executor.admission.admit(wf, defer=scheduled)
        except Unavailable as exc:
            self.executor.record_rejection(wf.name, self.gate.retryable(exc))
            raise
        except Exception as exc:
            self.executor.record_rejection(wf.name, exc)
            raise
        # The ticket is released when this block ends unless the executor took it over with the
        # new run: so on a store failure and on an idempotent replay (the run existed already).
        with ticket, self.executor.leases.creating(run_id):
            # A run due now with a free execution slot is created with its first attempt
            # started (one commit instead of a create and a RUNNING update); one that would
            # queue for a slot stays PENDING until it gets one.
            started = not scheduled and ticket.take_free_slot()
            new = self._new_run(
                req, wf, run_id, screened, priority, level, now, scheduled, remaining_s, started
            )
            try:
                run, created = await self.store.create_run(new)
            except Unavailable as exc:  # the store is down: nothing was accepted, retry later
                self.gate.retryable(exc)
                raise
            # Waiting starts before dispatch, so the end cannot be missed and no re-read is needed.
            ended = self.executor.events.ended(run.run_id) if req.wait and not run.terminal else None
            if created:
                self.executor.dispatch(run, ticket, started=started)
        if ended is None:
            return StartResult(run, created)
        budget = self.limits.max_wait_s if remaining_s is None else max(0.0, remaining_s - 0.05)
        try:
            if not created:
                run = await self.store.get_run(run.run_id)  # an existing run may have moved on
            run = await self.executor.until_ended(ended, run, budget)
        finally:
            self.executor.events.forget(run.run_id, ended)
        return StartResult(run, created)

    def _new_run(
        self,
        req: StartRequest,
        wf: Workflow,
        run_id: str,
        screened: Screened,
        priority: int,
        level: DegradationLevel | None,
        now: float,
        scheduled: bool,
        remaining_s: float | None,
        started: bool,
    ) -> NewRun:
        """The run to persist for an admitted request."""
        start = req.not_before if scheduled and req.not_before is not None else now
        deadline = start + wf.policy.run_timeout_s
        if req.wait and remaining_s is not None:
            deadline = min(deadline, now + remaining_s)
        owner, lease_expires = self.executor.lease()
        labels, label_redactions = redact_labels(req.labels)
        redactions = dict(screened.redactions)
        for kind, n in label_redactions.items():
            redactions[kind] = redactions.get(kind, 0) + n
        key = req.idempotency_key
        hashed, legacy_hash = self._request_hashes(req, wf) if key else ("", "")
        return NewRun(
            run_id=run_id,
            workflow=wf.name,
            params=screened.params,
            principal=screened.subject,
            priority=priority,
            created_at=now,
            request_hash=hashed,
            legacy_request_hash=legacy_hash,
            idempotency_key=self.idempotency.stored(key) if key else None,
            legacy_idempotency_key=key or None,
            not_before=req.not_before,
            deadline=deadline,
            degradation=level.name if level is not None else None,
            labels=labels,
            schedule=req.schedule,
            audit_id=screened.audit_id,
            redactions=redactions,
            lease_owner=owner,
            lease_expires=lease_expires,
            trace_id=current_trace_id(),
            retry_of=req.retry_of,
            resume=req.resume,
            started=started,
        )

    def _request_hashes(self, req: StartRequest, wf: Workflow) -> tuple[str, str]:
        """(keyed, legacy unkeyed) fingerprints of what a keyed StartRun asked for. Only a run
        with an idempotency key is ever compared with a later request, so runs without one
        store no hash and cost no canonical JSON or HMAC."""
        asked: dict[str, Any] = {
            "workflow": wf.name,
            "params": req.params,
            "labels": req.labels,
            "not_before": req.not_before,
            "priority": req.priority,
        }
        if req.retry_of is not None:  # only then, so the hashes of plain starts stay as they were
            asked.update(retry_of=req.retry_of, resume=req.resume)
        return self.idempotency.fingerprint(asked), request_hash(asked)

    def catalogue(self) -> list[CatalogueEntry]:
        """Every workflow: its declaration and its state on this replica (ListWorkflows)."""
        return self.executor.catalogue()

    async def authenticate(self, token: str, remaining_s: float | None) -> Caller:
        """The caller of CancelRun or RetryRun (security decides; unreachable: UNAVAILABLE)."""
        return await self.security.authenticate(token, remaining_s)

    async def authenticate_reader(self, token: str, remaining_s: float | None) -> Caller:
        """The caller of a read (GetRun, GetRunHistory, ListRuns, WatchRun, ListWorkflows): verified locally
        from the key material when the service has it, so reads survive a security outage."""
        return await self._readers.authenticate(token, remaining_s)

    async def _visible_run(self, run_id: str, caller: Caller) -> Run:
        """The run, if ``caller`` may see it. Runs carry their params and results: only their
        principal and ADMIN callers see them. Another principal's run is NotFound with the very
        message of an unknown id, so a caller cannot learn that a run id exists."""
        check_run_id(run_id)
        try:
            run = await self.store.get_run(run_id)
        except NotFound:
            raise NotFound(f"run {run_id!r} not found") from None
        if not caller.admin and run.principal != caller.subject:
            raise NotFound(f"run {run_id!r} not found")
        return run

    async def get(self, run_id: str, caller: Caller) -> tuple[Run, list[StepRecord]]:
        run = await self._visible_run(run_id, caller)
        return run, await self.store.get_steps(run_id)

    async def history(self, run_id: str, caller: Caller) -> tuple[Run, list[HistoryEvent]]:
        run = await self._visible_run(run_id, caller)
        return run, await self.store.get_history(run_id)

    async def retry(
        self,
        run_id: str,
        *,
        resume: bool,
        idempotency_key: str,
        wait: bool,
        token: str,
        remaining_s: float | None,
    ) -> StartResult:
        """A new run with a terminal run's workflow, params, labels and priority, screened again
        for the caller; with ``resume`` it starts with the old run's finished steps."""
        old = await self._visible_run(run_id, await self.authenticate(token, remaining_s))
        if not old.terminal:
            raise FailedPrecondition(
                f"run {run_id} is still {old.state.value}: cancel it or let it end first"
            )
        request = StartRequest(
            workflow=old.workflow,
            params=old.params,
            idempotency_key=idempotency_key,
            wait=wait,
            labels=old.labels,
            priority=old.priority,
            retry_of=old.run_id,
            resume=resume,
        )
        return await self.start(request, token=token, remaining_s=remaining_s)

    async def list(
        self,
        query: RunQuery,
        page_token: str,
        caller: Caller,
        *,
        size_of: Callable[[Run], int] | None = None,
        budget_bytes: int = 0,
    ) -> tuple[RunPage, str]:
        """A page of runs; with ``size_of``, cut short so the page stays within ``budget_bytes``
        (the next page token then continues after the last run returned)."""
        if not 1 <= query.limit <= 1000:
            raise violation("page_size", "must be between 1 and 1000", "OUT_OF_RANGE")
        check_text("workflow", query.workflow or "")
        for k, v in query.labels.items():
            check_text(f"labels[{k[:32]!r}]", k + v)
        if query.labels:  # stored redacted: a filter by a secret matches its redacted form
            query = dataclasses.replace(query, labels=redact_labels(query.labels)[0])
        if not caller.admin:  # part of the filters, so page tokens are bound to the caller
            query = dataclasses.replace(query, principal=caller.subject)
        if page_token:
            query = dataclasses.replace(query, before_seq=decode_page_token(page_token, query))
        if size_of is not None:  # the store reads no more than the message can hold
            query = dataclasses.replace(query, max_chars=budget_bytes)
        page = await self.store.list_runs(query)
        if size_of is not None:  # sizing converts each run: a page of large params is not for the loop
            page = await self._offload.run(page.stored_chars, _within_budget, page, size_of, budget_bytes)
        token = encode_page_token(page.next_seq, query) if page.next_seq is not None else ""
        return page, token

    async def watch(self, run_id: str, caller: Caller, poll_s: float = 1.0) -> AsyncIterator[RunEvent]:
        """Snapshot, then every change, ending after a terminal state.

        Events come from this replica's executor; the store is re-read every ``poll_s`` of
        silence so a run executed by another replica is followed too.
        """
        q = self.executor.events.subscribe(run_id)
        try:
            run, _ = await self.get(run_id, caller)
            yield RunEvent(EventType.SNAPSHOT, run)
            last = run
            while not last.terminal:
                try:
                    async with asyncio.timeout(poll_s):
                        event = await q.get()
                except TimeoutError:
                    fresh = await self.store.get_run(run_id)
                    if fresh.updated_at == last.updated_at and fresh.state is last.state:
                        continue
                    event = RunEvent(EventType.STATE_CHANGED, fresh)
                last = event.run if event.type is not EventType.STEP_FINISHED else last
                yield event
        finally:
            self.executor.events.unsubscribe(run_id, q)

    async def cancel(self, run_id: str, reason: str, caller: Caller) -> Run:
        await self._visible_run(run_id, caller)
        return await self.executor.cancel(run_id, reason[:512])
