"""What a caller saw during a drill, computed from a `tests.chaos.loadgen` events file.

calls      StartRun calls of a group (raw: attempts; shipped: logical calls)
failed     calls answered with an error, by status code
first ok   seconds from the fault to the first good StartRun sent after it
@ready     refusals of calls sent while healthd's ``readiness`` said SERVING; with a fault,
           only after readiness came back to SERVING (the moments between the fault and
           healthd noticing it are detection, reported by the drill table as "detect s")
ready s    seconds from the fault to readiness SERVING again
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CallerFigures", "figures", "read_events"]

UNREACHED = "failed to connect to all addresses"
"""gRPC's message for a call failed by the client's channel, no server answering it."""


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class CallerFigures:
    group: str
    calls: int = 0
    ok: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    first_ok_s: float | None = None
    refused_ready: int = 0
    unreached_ready: int = 0
    ready_again_s: float | None = None
    slowest_s: float = 0.0
    gap_s: float | None = None
    run_ids: list[str] = field(default_factory=list)
    calls_ok: list[str] = field(default_factory=list)

    def line(self) -> str:
        failed = ", ".join(f"{k} {v}" for k, v in sorted(self.failed.items())) or "0"
        first = "-" if self.first_ok_s is None else f"{self.first_ok_s:.2f}s"
        again = "" if self.ready_again_s is None else f" (SERVING again at {self.ready_again_s:.2f}s)"
        return (
            f"{self.group}: {self.calls} calls, failed {failed}, first good StartRun {first} after "
            f"the fault, {self.refused_ready} refused while readiness SERVING{again} "
            f"(+{self.unreached_ready} unreached: reconnect backoff), "
            f"slowest call {self.slowest_s:.2f}s"
        )


def figures(events: list[dict[str, Any]], group: str, fault_at: float | None) -> CallerFigures:
    """Figures of one caller group; ``fault_at`` is the wall-clock time of the fault."""
    marks = sorted((e["t"], e["readiness"]) for e in events if "readiness" in e)
    times = [t for t, _ in marks]

    def ready_at(t: float) -> bool:
        i = bisect.bisect_right(times, t) - 1
        return i >= 0 and marks[i][1] == "SERVING"

    out = CallerFigures(group)
    since = float("-inf")  # refusals sent from here on count as "refused while ready"
    if fault_at is not None:
        after = [(t, r) for t, r in marks if t >= fault_at]
        down = next((t for t, r in after if r != "SERVING"), None)
        up = next((t for t, r in after if r == "SERVING" and down is not None and t > down), None)
        since = up if up is not None else float("inf")
        out.ready_again_s = None if up is None else up - fault_at
    for e in events:
        if e.get("group") != group:
            continue
        out.calls += 1
        out.slowest_s = max(out.slowest_s, e["t1"] - e["t0"])
        if e["ok"]:
            out.ok += 1
            out.run_ids.append(e["run_id"])
            out.calls_ok.append(e["call"])
            if fault_at is not None and e["t0"] >= fault_at:
                late = e["t1"] - fault_at
                out.first_ok_s = late if out.first_ok_s is None else min(out.first_ok_s, late)
        else:
            out.failed[e["code"]] += 1
            if e["t0"] >= since and ready_at(e["t0"]):
                if e.get("detail", "").startswith(UNREACHED):
                    out.unreached_ready += 1
                else:
                    out.refused_ready += 1
    if fault_at is not None:
        good = sorted(e["t1"] for e in events if e.get("group") == group and e["ok"] and e["t1"] >= fault_at)
        marks = [fault_at, *good]
        out.gap_s = max(b - a for a, b in itertools.pairwise(marks)) if good else float("inf")
    return out
