"""The run store interface. SQLite is the embedded default; PostgreSQL implements the same.

Every backend must pass `tests/unit/workflow/store_suite.py` (parametrize its ``store``
fixture with the new backend).

Invariants every implementation keeps:
- `create_run` has committed the run when it returns (StartRun answers only afterwards).
- Idempotency: a run is unique per (principal, idempotency_key); the same key with the same
  request hash returns the existing run, a different request hash raises AlreadyExists.
- `update_run` reads the current state and applies `transition()` in one transaction.
- `list_runs` is keyset-paginated on ``seq`` (newest first): a run inserted while a caller
  pages never shifts or duplicates rows of later pages.
- History: `create_run` (RUN_CREATED), `update_run` (a new attempt, the end), `begin_step`,
  `record_step` and `fail_step` append their history event in the same transaction as their
  write; `append_event` records the others. `get_history` returns them in order.
- Leases make multi-replica execution possible: a run is executed by the owner of its
  unexpired lease; `claim_runs` hands out unfinished runs whose lease is free, expired,
  or already the caller's (a restarted replica with the same owner id resumes at once).
- Fencing: every claim increments the run's ``lease_epoch``; a write given a `Lease`
  (``update_run``, ``begin_step``, ``record_step``, ``fail_step``, ``append_event``) lands
  only while the run's owner and epoch still equal it, atomically with the check, else
  raises `LeaseLost` and changes nothing. ``begin_step`` also needs the lease unexpired, so
  no step body starts on a lease another replica may be taking over. ``lease=None`` writes
  unfenced (CancelRun of a run no replica here executes, tests).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol, runtime_checkable

from services.workflow._history import HistoryEvent
from services.workflow._model import Lease, NewRun, Run, RunChange, RunError, RunPage, RunQuery, StepRecord

__all__ = ["RunStore"]


@runtime_checkable
class RunStore(Protocol):
    """Durable storage of runs and their finished steps."""

    async def open(self) -> None:
        """Create the schema if needed and start the backend's workers."""

    async def close(self) -> None:
        """Flush pending writes and release connections; idempotent."""

    async def probe(self) -> None:
        """Check that the store can read and write now (the health probe); writes no run.

        Raises:
            Unavailable: a write would fail (disk full, read-only, database down).
        """

    async def create_run(self, new: NewRun) -> tuple[Run, bool]:
        """Persist ``new``; return (run, True), or (existing run, False) on an idempotent repeat.

        Raises:
            AlreadyExists: the idempotency key was used for a different request.
        """

    async def get_run(self, run_id: str) -> Run:
        """Raises NotFound for an unknown id."""

    async def list_runs(self, query: RunQuery) -> RunPage:
        """Runs matching ``query``, newest first, at most ``query.limit``, and fewer once they
        hold more than ``query.max_chars`` of stored params and results (at least one run).
        Only the runs returned are read and parsed (`cut_page`)."""

    async def update_run(
        self, run_id: str, change: RunChange, lease: Lease | None = None, current: Run | None = None
    ) -> Run:
        """Apply a transition atomically; raises NotFound, LeaseLost or InvalidTransition.

        ``current``: the run as its lease holder (``lease``) knows it; the returned run is then
        derived from it and the columns the write computes, not read back whole."""

    async def begin_step(self, run_id: str, name: str, lease: Lease | None = None) -> int:
        """Count one more execution of a step about to run (committed before its body starts);
        returns the count. Raises LeaseLost when ``lease`` moved or expired."""

    async def record_step(self, run_id: str, name: str, result_json: str, lease: Lease | None = None) -> None:
        """Persist a finished step's result, already encoded by `canonical_json` (the step encodes
        it once, for its own check, the size limit and this write); first write wins: finished
        steps never change.

        Raises LeaseLost when ``lease`` moved."""

    async def fail_step(self, run_id: str, name: str, error: RunError, lease: Lease | None = None) -> None:
        """Record that an unfinished step's execution raised ``error`` (a finished step is kept).

        Raises LeaseLost when ``lease`` moved."""

    async def append_event(self, run_id: str, event: HistoryEvent, lease: Lease | None = None) -> None:
        """Append one history event the executor observed (failed attempt, retry, fallback...).

        Raises LeaseLost when ``lease`` moved."""

    async def get_history(self, run_id: str) -> list[HistoryEvent]:
        """The run's history events, oldest first, numbered from 1 (empty for an unknown id)."""

    async def get_steps(self, run_id: str) -> list[StepRecord]:
        """Steps of a run, started or finished, in the order they were first started."""

    async def claim_runs(
        self, owner: str, now: float, lease_s: float, limit: int, skip: Collection[str] = ()
    ) -> list[Run]:
        """Lease up to ``limit`` unfinished runs due by ``now`` to ``owner``, each with its epoch
        incremented (the returned runs carry the new `Run.lease`); runs in ``skip`` (those the
        caller executes already) are left alone."""

    async def renew_leases(self, owner: str, held: Mapping[str, int], until: float) -> set[str]:
        """Extend ``owner``'s leases (run id -> epoch held); returns the ids it still held.

        A lease that expired is renewed as long as nobody claimed it since (same epoch). The
        others were taken over by another replica or have ended; they are left unchanged.
        """
