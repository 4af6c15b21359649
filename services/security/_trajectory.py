"""Trajectory validation: numeric sequences with finite values, bounds, a size cap and monotonic time.

A trajectory is a list of points; a point is a number, a list of numbers (``[t, x, y]``:
time first when ``time_required``), or a mapping of names to numbers or lists of numbers
(``{"t": 0.5, "values": [x, y]}``, time under ``time_key``). Booleans are not numbers
here, even though Python says they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real

from pydantic import Field

from services.common import ConfigModel
from services.security._findings import Finding

__all__ = ["TrajectorySpec", "TrajectoryValidator"]


class TrajectorySpec(ConfigModel):
    """Constraints on one trajectory field."""

    max_points: int = Field(default=10_000, ge=1, le=10_000_000)
    """Most points accepted."""
    max_values: int = Field(default=100_000, ge=1, le=100_000_000)
    """Most coordinates in one trajectory, all points together (time included)."""
    min_value: float = -1e12
    """Smallest value any coordinate may take (time included)."""
    max_value: float = 1e12
    """Largest value any coordinate may take (time included)."""
    dims: int | None = Field(default=None, ge=1, le=64)
    """Required number of coordinates per point (time included); unset: any, but all alike."""
    time_required: bool = False
    """Points carry time (index 0 of a list point, or ``time_key``) that must strictly increase."""
    time_key: str = "t"
    """Key of the time value in mapping points."""
    max_findings: int = Field(default=20, ge=1, le=1000)
    """Stop reporting after this many findings."""


def _is_number(v: object) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def _size(point: object) -> int:
    """How many values flattening ``point`` yields at most (a shallow count)."""
    if isinstance(point, (list, tuple)):
        return len(point)
    if isinstance(point, Mapping):
        return sum(len(v) if isinstance(v, (list, tuple)) else 1 for v in point.values())
    return 1


class TrajectoryValidator:
    """Validates one trajectory value against a `TrajectorySpec`."""

    def __init__(self, spec: TrajectorySpec | None = None) -> None:
        self.spec = spec or TrajectorySpec()

    def validate(self, field: str, value: object) -> list[Finding]:
        """Return findings for ``value`` (empty when valid). Never raises on any input."""
        spec = self.spec
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
            return [
                Finding(
                    "TRAJ_NOT_SEQUENCE", field, -1, f"expected a list of points, got {type(value).__name__}"
                )
            ]
        if not value:
            return [Finding("TRAJ_EMPTY", field, -1, "trajectory has no points")]
        if len(value) > spec.max_points:
            return [
                Finding(
                    "TRAJ_TOO_MANY_POINTS",
                    field,
                    spec.max_points,
                    f"more than {spec.max_points} points (limit trajectory.max_points)",
                )
            ]
        out: list[Finding] = []
        shape: int | None = spec.dims
        prev_t: float | None = None
        budget = spec.max_values
        for i, point in enumerate(value):
            budget -= _size(point)
            if budget < 0:  # checked before the point is flattened: bounded work per trajectory
                msg = f"more than {spec.max_values} values (limit trajectory.max_values)"
                out.append(Finding("TRAJ_TOO_MANY_VALUES", field, i, msg))
                break
            coords = self._coords(f"{field}[{i}]", point, out)
            if coords is None:
                if len(out) >= spec.max_findings:
                    break
                continue
            if shape is None:
                shape = len(coords)
            elif len(coords) != shape:
                out.append(
                    Finding(
                        "TRAJ_SHAPE", f"{field}[{i}]", i, f"point has {len(coords)} values, expected {shape}"
                    )
                )
            bad = False
            for name, v in coords:
                path = f"{field}[{i}]{name}"
                if not math.isfinite(v):
                    out.append(Finding("TRAJ_NOT_FINITE", path, i, "value is NaN or infinite"))
                    bad = True
                elif not spec.min_value <= v <= spec.max_value:
                    out.append(
                        Finding(
                            "TRAJ_OUT_OF_BOUNDS",
                            path,
                            i,
                            f"value outside [{spec.min_value}, {spec.max_value}]",
                        )
                    )
            if spec.time_required and not bad:
                t = coords[0][1]
                if prev_t is not None and not t > prev_t:
                    out.append(
                        Finding(
                            "TRAJ_TIME_NOT_MONOTONIC", f"{field}[{i}]{coords[0][0]}", i, "time must increase"
                        )
                    )
                prev_t = t
            if len(out) >= spec.max_findings:
                break
        return out[: spec.max_findings]

    def _coords(self, path: str, point: object, out: list[Finding]) -> list[tuple[str, float]] | None:
        """Flatten a point into (suffix, value) pairs, time first; None (with a finding) if malformed."""
        spec = self.spec
        items: list[tuple[str, object]]
        if _is_number(point):
            items = [("", point)]
        elif isinstance(point, (list, tuple)):
            items = [(f"[{j}]", v) for j, v in enumerate(point)]
        elif isinstance(point, Mapping):
            keys = list(point.keys())
            if spec.time_required and spec.time_key in point:
                keys.remove(spec.time_key)
                keys.insert(0, spec.time_key)
            items = []
            for k in keys:
                v = point[k]
                # {"t": 1.0, "values": [x, y]}: the proto's TrajectoryPoint shape, one level of nesting.
                if isinstance(v, (list, tuple)):
                    items.extend((f".{k}[{j}]", x) for j, x in enumerate(v))
                else:
                    items.append((f".{k}", v))
        else:
            out.append(
                Finding(
                    "TRAJ_BAD_POINT",
                    path,
                    -1,
                    f"point must be a number, list or mapping, not {type(point).__name__}",
                )
            )
            return None
        if not items:
            out.append(Finding("TRAJ_BAD_POINT", path, -1, "point is empty"))
            return None
        if spec.time_required and (
            (isinstance(point, Mapping) and spec.time_key not in point) or _is_number(point)
        ):
            out.append(Finding("TRAJ_MISSING_TIME", path, -1, f"point has no time value ('{spec.time_key}')"))
            return None
        for name, v in items:
            if not _is_number(v):
                out.append(
                    Finding(
                        "TRAJ_NOT_NUMBER", f"{path}{name}", -1, f"expected a number, got {type(v).__name__}"
                    )
                )
                return None
        try:
            return [(name, float(v)) for name, v in items]  # type: ignore[arg-type]
        except OverflowError:  # an int too large for a float
            out.append(Finding("TRAJ_OUT_OF_BOUNDS", path, -1, "value too large"))
            return None
