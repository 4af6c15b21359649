"""This replica's side of run leases: claiming runs, renewing leases, fencing executions off.

`LeaseKeeper` claims due runs for the executor, renews the leases of the runs executing
here, and stops an execution (at its next await, writing nothing more) when its lease
moved, when a renewal has not succeeded for ``lease_s``, or when one of its writes was
refused (`LeaseLost`) or could not be taken (`Unavailable`: the run is paused, and the
claim loop resumes it once the store takes writes again).

`HeldLeases` keeps the lease each execution holds and when it was last confirmed: when the
run was created or claimed here and whenever a renewal succeeded. One not confirmed for
``lease_s`` may have been taken over by another replica (its expiry has passed, by this
replica's clock). Times are monotonic seconds taken *before* the store call that confirmed
them, so they never overstate a hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Literal

from services.common import Unavailable
from services.workflow._model import Lease, LeaseLost, Run
from services.workflow._store import RunStore

__all__ = ["HeldLeases", "LeaseKeeper"]

_log = logging.getLogger("services.workflow._executor")  # one logger for what executions do
_CLAIM_LIMIT = 256
Stop = Literal["lost", "paused"]
_MARGIN = 0.1  # share of lease_s a step start keeps clear of the lease's expiry


class HeldLeases:
    """Run id -> (lease, confirmed at). Event-loop only: no locking."""

    def __init__(self, lease_s: float, monotonic: Callable[[], float]) -> None:
        self._lease_s, self._mono = lease_s, monotonic
        self._held: dict[str, tuple[Lease, float]] = {}

    def hold(self, run: Run, *, at: float | None = None) -> Lease:
        """Record ``run``'s lease (it was just created or claimed by this replica)."""
        if run.lease is None:
            raise ValueError(f"run {run.run_id} has no lease to execute it under")
        self._held[run.run_id] = (run.lease, self._mono() if at is None else at)
        return run.lease

    def lease(self, run_id: str) -> Lease | None:
        entry = self._held.get(run_id)
        return None if entry is None else entry[0]

    def epochs(self) -> dict[str, int]:
        """What `RunStore.renew_leases` takes: run id -> epoch held."""
        return {run_id: lease.epoch for run_id, (lease, _) in self._held.items()}

    def confirmed(self, run_ids: Iterable[str], at: float) -> None:
        for run_id in run_ids:
            entry = self._held.get(run_id)
            if entry is not None:
                self._held[run_id] = (entry[0], max(entry[1], at))

    def live(self, run_id: str) -> bool:
        """Whether ``run_id``'s lease was confirmed less than ``lease_s`` ago: no other replica
        can have taken it over yet (its expiry, by this clock, has not passed)."""
        entry = self._held.get(run_id)
        # The margin covers the lease's expiry having been computed a little before the
        # confirmation time was taken (a created run's lease precedes its commit).
        return entry is not None and self._mono() - entry[1] < self._lease_s * (1 - _MARGIN)

    def unconfirmed(self, now: float) -> list[str]:
        """Runs whose lease was last confirmed ``lease_s`` or more before ``now``."""
        return [run_id for run_id, (_, at) in self._held.items() if now - at >= self._lease_s]

    def drop(self, run_id: str) -> None:
        self._held.pop(run_id, None)


class LeaseKeeper:
    """Claims, renewals and fencing for one executor (event-loop only).

    Args:
        active: The executor's run id -> task map (read here; the executor owns it).
        dispatch: Starts a claimed run: ``dispatch(run, confirmed_at)``.
    """

    def __init__(
        self,
        *,
        store: RunStore,
        owner: str,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        lease_s: float,
        active: dict[str, asyncio.Task[None]],
        dispatch: Callable[[Run, float | None], None],
    ) -> None:
        self._store, self.owner, self._clock, self._mono = store, owner, clock, monotonic
        self.lease_s = lease_s
        self._active, self._dispatch = active, dispatch
        self.held = HeldLeases(lease_s, monotonic)
        # Executions to stop, and why: "lost" (the run is another replica's now) or "paused"
        # (the store could not take a write). First reason wins; cleared as the task ends.
        self._stops: dict[str, tuple[Stop, str]] = {}
        # Runs claimed anew while an older execution of them still ends here: started after it.
        self._redispatch: dict[str, Run] = {}
        # Runs this replica is creating (leased to it, not dispatched yet): no claim of this
        # replica's takes them, or a create racing a claim would run twice or lose its lease.
        self._creating: set[str] = set()

    def loops(self, poll_s: float) -> list[asyncio.Task[None]]:
        """Start the claim loop (every ``poll_s``) and the renewal loop (``lease_s / 3``)."""
        return [
            asyncio.create_task(_every(poll_s, self.claim_due), name="executor-claims"),
            asyncio.create_task(_every(self.lease_s / 3, self.renew), name="executor-leases"),
        ]

    def lease_fields(self) -> tuple[str, float]:
        """Lease fields for a run this replica creates and will execute right away."""
        return self.owner, self._clock() + self.lease_s

    @contextlib.contextmanager
    def creating(self, run_id: str) -> Iterator[None]:
        """While the block creates and dispatches ``run_id``, claims here leave it alone."""
        self._creating.add(run_id)
        try:
            yield
        finally:
            self._creating.discard(run_id)

    async def claim_due(self) -> None:
        at = self._mono()
        skip = [*self._active, *self._creating]
        claimed = await self._store.claim_runs(
            self.owner, self._clock(), self.lease_s, limit=_CLAIM_LIMIT, skip=skip
        )
        for run in claimed:
            held = self.held.lease(run.run_id)
            if run.run_id not in self._active:
                self._dispatch(run, at)
            elif held is not None and run.lease == Lease(self.owner, held.epoch + 1):
                # A poll that raced this task's creation (same batch) claimed the run from the
                # very epoch the task holds: nobody held it in between, so the task goes on
                # under the new epoch.
                self.held.hold(run, at=at)
            else:  # the epoch moved past the task's by more: fenced off, the claim starts after
                self._redispatch[run.run_id] = run
                self.fence_off(run.run_id, f"re-claimed at epoch {run.lease_epoch}")

    async def renew(self) -> None:
        """Extend the leases of the runs executing here. After a store outage or a stop
        longer than ``lease_s`` another replica may have claimed some of them; those stop
        here (no state change: the run is the new owner's)."""
        held = self.held.epochs()
        if not held:
            return
        at = self._mono()
        try:
            renewed = await self._store.renew_leases(self.owner, held, self._clock() + self.lease_s)
        except Exception:
            for run_id in self.held.unconfirmed(self._mono()):
                self.fence_off(run_id, f"lease not renewed for {self.lease_s:g} s (run store unreachable)")
            raise
        self.held.confirmed(renewed, at)
        for run_id in held.keys() - renewed:
            if run_id in self._active:
                await self._check(run_id)

    async def _check(self, run_id: str) -> None:
        # Not renewed: the run ended meanwhile (its task is finishing) or its lease moved.
        # Only the latter stops the task: cancelling one that is publishing its final state
        # would leave waiters without the event.
        run = await self._store.get_run(run_id)
        if run.terminal or run.lease == self.held.lease(run_id):
            return
        self.fence_off(run_id, f"lease lost to {run.lease_owner} (epoch {run.lease_epoch})")

    def fence_off(self, run_id: str, reason: str) -> None:
        """Stop this replica's execution of ``run_id`` at its next await, writing nothing more."""
        task = self._active.get(run_id)
        if task is None or run_id in self._stops:
            return
        self._stops[run_id] = ("lost", reason)
        task.cancel()

    async def fenced(self, run_id: str, write: Awaitable[Any]) -> Any:
        """Await a fenced store write of an execution; a refusal (`LeaseLost`) ends it here, a
        store that cannot take the write (`Unavailable`) pauses it: either way it unwinds as
        a cancellation, past the workflow's retries and fallbacks."""
        try:
            return await write
        except LeaseLost as exc:
            raise self.lost(run_id, exc) from exc
        except Unavailable as exc:
            self._stops.setdefault(run_id, ("paused", str(exc)))
            raise asyncio.CancelledError from exc

    def lost(self, run_id: str, exc: LeaseLost) -> asyncio.CancelledError:
        """Record that a write of ``run_id``'s execution was refused (`LeaseLost`); returns the
        cancellation that unwinds the execution (raise it)."""
        self._stops.setdefault(run_id, ("lost", str(exc)))
        return asyncio.CancelledError()

    def check_live(self, run_id: str) -> None:
        """Called between a step's committed begin and its body: a process stopped (SIGSTOP,
        a long GC or swap) in between may have woken up after its lease expired and was
        taken over, so the body starts only while the lease is provably still this
        replica's (else the execution stops; ``executions`` then counts one start more than
        ran: over-counting, never a body run on a moved lease)."""
        if not self.held.live(run_id):
            self._stops.setdefault(
                run_id, ("lost", f"lease not confirmed within {self.lease_s:g} s at a step start")
            )
            raise asyncio.CancelledError

    def stopped(self, run: Run) -> Stop | None:
        """Why the cancelled execution of ``run`` was stopped here (logged), if it was."""
        stop = self._stops.pop(run.run_id, None)
        if stop is None:
            return None
        kind, reason = stop
        extra = {"run_id": run.run_id, "workflow": run.workflow}
        if kind == "lost":
            _log.warning(
                "lease lost: run %s stops here, nothing more written (%s)", run.run_id, reason, extra=extra
            )
        else:  # the run keeps its state and lease; the claim loop resumes it
            _log.warning(
                "run %s paused: the run store cannot take its write (%s); it resumes once it can",
                run.run_id,
                reason,
                extra=extra,
            )
        return kind

    def ended(self, run_id: str) -> Run | None:
        """Forget ``run_id``'s execution; returns a newer claim of it to start now, if any."""
        self.held.drop(run_id)
        self._stops.pop(run_id, None)
        return self._redispatch.pop(run_id, None)


async def _every(interval: float, fn: Callable[[], Awaitable[None]]) -> None:
    failing = False  # an outage (full disk) is logged as it starts and ends, not every tick
    while True:
        await asyncio.sleep(interval)
        try:
            await fn()
        except Unavailable as exc:  # the store cannot serve now; the next tick retries
            if not failing:
                _log.warning("executor %s: %s; retrying every %g s", fn.__name__, exc, interval)
            failing = True
            continue
        except Exception:  # a bug must not kill the loop either; the next tick retries
            _log.exception("executor background task failed")
            continue
        if failing:
            _log.info("executor %s: the run store serves again", fn.__name__)
        failing = False
