"""The leases one replica holds on the runs it executes, and when each was last confirmed.

A lease is confirmed when the run was created or claimed here and whenever a renewal
succeeded. One not confirmed for ``lease_s`` may have been taken over by another replica
(its expiry has passed, by this replica's clock): the executor stops such a run at its
next await rather than keep executing on a lease it cannot show. Times are monotonic
seconds taken *before* the store call that confirmed them, so they never overstate a hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from services.workflow._model import Lease, Run

__all__ = ["HeldLeases"]


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

    def unconfirmed(self, now: float) -> list[str]:
        """Runs whose lease was last confirmed ``lease_s`` or more before ``now``."""
        return [run_id for run_id, (_, at) in self._held.items() if now - at >= self._lease_s]

    def drop(self, run_id: str) -> None:
        self._held.pop(run_id, None)
