"""Checks of a request before any work: sizes, characters, nesting and numbers (StartRun,
RetryRun, reads). Each refusal is INVALID_ARGUMENT naming the field (`violation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.struct_pb2 import Struct

from services.common import FieldViolation, InvalidArgument
from services.workflow._config import LimitsConfig
from services.workflow._model import canonical_json

__all__ = ["StartRequest", "check_run_id", "check_start", "check_text", "violation"]


@dataclass(frozen=True)
class StartRequest:
    workflow: str
    params: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str = ""
    wait: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    not_before: float | None = None
    priority: int = 0
    schedule: str | None = None
    retry_of: str | None = None
    """RetryRun: the run retried (its access was checked before)."""
    resume: bool = False
    """RetryRun: copy ``retry_of``'s finished steps."""
    params_message: Struct | None = None
    """``params`` as the caller sent them (StartRun over gRPC): screening forwards this message
    instead of converting ``params`` back, and its size decides where the checks of ``params``
    run (`services.common.Offload`)."""

    @property
    def params_bytes(self) -> int:
        """The encoded size of the params as sent (0 when they did not come as a message)."""
        return self.params_message.ByteSize() if self.params_message is not None else 0


def violation(fieldname: str, problem: str, reason: str) -> InvalidArgument:
    return InvalidArgument(f"{fieldname}: {problem}", [FieldViolation(fieldname, problem, reason)])


def check_text(fieldname: str, value: str) -> None:
    """Refuse a NUL character: PostgreSQL text cannot hold one (SQLite would, so refuse it for
    both backends alike, at the edge)."""
    if "\x00" in value:
        raise violation(fieldname, "contains a NUL character", "INVALID_CHARACTER")


def check_run_id(run_id: str) -> None:
    if not run_id or len(run_id) > 128:
        raise violation("run_id", "must be 1-128 characters", "INVALID")
    check_text("run_id", run_id)


def _scan(value: Any, limit: int) -> tuple[int, bool]:
    """(nesting depth, whether a NaN or infinite number occurs) of a JSON value in one walk,
    giving up (depth ``limit + 1``) once past ``limit``."""
    if not isinstance(value, dict | list):
        return 1, isinstance(value, float) and not math.isfinite(value)
    stack = [(value, 1)]
    deepest, non_finite = 0, False
    while stack:
        node, d = stack.pop()
        if d > deepest:
            deepest = d
            if deepest > limit:
                return deepest, non_finite
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, d + 1))
            elif isinstance(child, float) and not math.isfinite(child):
                non_finite = True
    return deepest, non_finite


def _first_non_finite(value: Any) -> str | None:
    """Path of the first NaN or infinite number in a JSON value, or None (for the message).

    JSON has no such numbers: protobuf's Struct carries them, but neither the security
    service's screening nor the stores can represent them.
    """
    stack: list[tuple[Any, str]] = [(value, "params")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return path
        if isinstance(node, dict):
            stack.extend((v, f"{path}.{k}") for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))
    return None


def check_start(req: StartRequest, lim: LimitsConfig, now: float) -> None:
    """Refuse a StartRun whose fields are out of bounds (``now``: wall-clock seconds)."""
    if not req.workflow:
        raise violation("workflow", "is required", "REQUIRED")
    if len(req.workflow) > 128:
        raise violation("workflow", "longer than 128 characters", "TOO_LONG")
    if len(req.idempotency_key) > 128:
        raise violation("idempotency_key", "longer than 128 characters", "TOO_LONG")
    check_text("idempotency_key", req.idempotency_key)
    if len(req.labels) > lim.max_labels:
        raise violation("labels", f"more than {lim.max_labels} labels", "TOO_MANY")
    for k, v in req.labels.items():
        if not k or len(k) > 128 or len(v) > 128:
            raise violation(f"labels[{k[:32]}]", "keys must be 1-128 and values 0-128 characters", "TOO_LONG")
        check_text(f"labels[{k[:32]!r}]", k + v)
    if not -100 <= req.priority <= 100:
        raise violation("priority", "must be between -100 and 100", "OUT_OF_RANGE")
    if req.not_before is not None and req.not_before > now + lim.max_schedule_ahead_s:
        raise violation("not_before", "too far in the future", "OUT_OF_RANGE")
    depth, non_finite = _scan(req.params, lim.max_params_depth)
    if depth > lim.max_params_depth:
        raise violation("params", f"nested deeper than {lim.max_params_depth} levels", "TOO_DEEP")
    if non_finite:
        path = _first_non_finite(req.params) or "params"
        raise violation(path, "NaN and Infinity are not JSON numbers", "NOT_FINITE")
    size = len(canonical_json(req.params).encode())
    if size > lim.max_params_bytes:
        raise violation("params", f"{size} bytes, more than {lim.max_params_bytes}", "TOO_LARGE")
