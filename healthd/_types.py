"""Value types shared by checks, aggregation, healing and the servers."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """Outcome of a check or health of a component (mapped to grpc.health.v1 at the edge)."""

    SERVING = "SERVING"
    NOT_SERVING = "NOT_SERVING"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class CheckResult:
    """One check outcome.

    Attributes:
        status: SERVING, NOT_SERVING or UNKNOWN (UNKNOWN never counts as a success).
        latency_s: Time the check took (the timeout when it timed out).
        message: Why, for people: ``connection refused``, ``timed out after 1.0s``.
        decisive: True for events rather than samples (a child exited, a Watch stream broke):
            they bypass the failure threshold because death needs no confirmation.
    """

    status: Status
    latency_s: float = 0.0
    message: str = ""
    decisive: bool = False

    @property
    def ok(self) -> bool:
        """True only for SERVING."""
        return self.status is Status.SERVING
