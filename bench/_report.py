"""Figures, targets, medians and the one table `python -m bench` prints (and its JSON).

A `Figure` holds the raw samples of one measured quantity for our implementation and
for its reference, one sample per repeat, taken alternately in the same run on the
same machine with the same client. Only medians and ratios are reported: absolute
times vary with the machine and its load, the ratio against a reference measured
beside it much less.
"""

from __future__ import annotations

import json
import math
import platform
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["Figure", "Target", "percentile", "render_table", "write_json"]

TargetKind = Literal["ratio>=", "ratio<=", "value<=", "value>="]


@dataclass(frozen=True)
class Target:
    """What a figure must reach: a bound on the ratio ours/reference or on our value."""

    kind: TargetKind
    bound: float

    @classmethod
    def ratio_at_least(cls, bound: float) -> Target:
        return cls("ratio>=", bound)

    @classmethod
    def ratio_at_most(cls, bound: float) -> Target:
        return cls("ratio<=", bound)

    @classmethod
    def at_most(cls, bound: float) -> Target:
        return cls("value<=", bound)

    @classmethod
    def at_least(cls, bound: float) -> Target:
        return cls("value>=", bound)

    def met(self, ours: float, ratio: float | None) -> bool | None:
        """True/False when it can be judged, None when the reference is missing."""
        if self.kind.startswith("ratio"):
            if ratio is None or math.isnan(ratio):
                return None
            return ratio >= self.bound if self.kind == "ratio>=" else ratio <= self.bound
        return ours <= self.bound if self.kind == "value<=" else ours >= self.bound

    def describe(self, unit: str) -> str:
        op = ">=" if self.kind.endswith(">=") else "<="
        if self.kind.startswith("ratio"):
            return f"ratio {op} {self.bound:g}x"
        return f"{op} {_fmt(self.bound)} {unit}".rstrip()


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; NaN for no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else math.nan


@dataclass
class Figure:
    """One measured quantity: our samples, the reference's samples, and a target.

    Args:
        name: Row label, e.g. ``health.check c64 throughput``.
        unit: Unit of the samples (``req/s``, ``ms``, ``MB``).
        ours: One sample per repeat for our implementation.
        ref: One sample per repeat for the reference (empty when there is none).
        ref_label: What the reference is, e.g. ``grpcio HealthServicer``.
        target: The bar this figure must meet, if the issue sets one.
        note: Free text shown under the table (errors seen, what ran where).
    """

    name: str
    unit: str
    ours: list[float]
    ref: list[float] = field(default_factory=list)
    ref_label: str = ""
    target: Target | None = None
    note: str = ""

    @property
    def ours_median(self) -> float:
        return _median(self.ours)

    @property
    def ref_median(self) -> float | None:
        return _median(self.ref) if self.ref else None

    @property
    def ratio(self) -> float | None:
        """ours / reference: the median of the per-repeat ratios when samples are paired.

        Each repeat measures ours and the reference back to back, so the ratio within a
        pair cancels most of the machine's drifting load; its median is more robust than
        the ratio of the two medians, which is the fallback for unpaired samples.
        """
        pairs = [o / r for o, r in zip(self.ours, self.ref, strict=False) if r and not math.isnan(o + r)]
        if self.ref and len(self.ours) == len(self.ref) and pairs:
            return statistics.median(pairs)
        ref = self.ref_median
        if ref is None or ref == 0 or math.isnan(ref):
            return None
        return self.ours_median / ref

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if math.isnan(self.ours_median):
            return False
        return self.target.met(self.ours_median, self.ratio)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = self.target.describe(self.unit) if self.target else None
        data.update(ours_median=self.ours_median, ref_median=self.ref_median, ratio=self.ratio, met=self.met)
        return data


def _fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def render_table(results: dict[str, list[Figure]], header: str = "") -> str:
    """Every benchmark's figures as one aligned text table, notes below it."""
    columns = ["benchmark", "figure", "unit", "ours", "reference", "ratio", "target", "met?"]
    rows: list[list[str]] = []
    notes: list[str] = []
    for bench_name, figures in results.items():
        for fig in figures:
            met = {True: "yes", False: "NO", None: "-"}[fig.met]
            ratio = "-" if fig.ratio is None else f"{fig.ratio:.2f}x"
            target = fig.target.describe(fig.unit) if fig.target else "-"
            ref = _fmt(fig.ref_median)
            rows.append([bench_name, fig.name, fig.unit, _fmt(fig.ours_median), ref, ratio, target, met])
            if fig.ref_label:
                notes.append(f"{bench_name}: reference = {fig.ref_label}")
            if fig.note:
                notes.append(f"{bench_name} / {fig.name}: {fig.note}")
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    numeric = {3, 4, 5}

    def line(cells: list[str]) -> str:
        return " | ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    out = [header] if header else []
    out += [line(columns), "-+-".join("-" * w for w in widths), *(line(r) for r in rows)]
    if notes:
        out += ["", *dict.fromkeys(notes)]  # de-duplicated, in order
    return "\n".join(out)


def write_json(path: Path, results: dict[str, list[Figure]], meta: dict[str, Any]) -> None:
    """Write every figure (raw samples, medians, ratios, verdicts) and run metadata."""
    meta = {"python": platform.python_version(), "machine": platform.machine(), **meta}
    body = {"meta": meta, "benchmarks": {k: [f.as_dict() for f in v] for k, v in results.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
