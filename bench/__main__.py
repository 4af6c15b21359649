"""`python -m bench`: run the benchmarks, print one table, write it as JSON.

python -m bench                 every benchmark (bounded: < 10 minutes on 2 cores)
python -m bench --only NAME     one benchmark (repeatable; prefix match: --only health)
python -m bench --quick         short windows, 3 repeats: a smoke run, not for conclusions
python -m bench --list          names and descriptions
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench._registry import Context, Skip, load_all, registry
from bench._report import Figure, render_table, write_json

RESULTS = Path(__file__).resolve().parent / "results"

WHERE = (
    "Each server under test runs in its own process; the load generator is this process "
    "(one asyncio gRPC client, the same for ours and the reference); all traffic on 127.0.0.1. "
    "Figures are medians over repeats that rotate ours and the reference; "
    "a ratio is the median of the per-repeat ratios ours/reference."
)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only benchmarks whose name starts with NAME (repeatable)",
    )
    parser.add_argument("--quick", action="store_true", help="short windows and 3 repeats (smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="samples per figure (default 5, quick 3)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON output file (default bench/results/<utc>.json)"
    )
    return parser.parse_args(argv)


async def _run(ctx: Context, names: list[str]) -> tuple[dict[str, list[Figure]], dict[str, str]]:
    results: dict[str, list[Figure]] = {}
    skipped: dict[str, str] = {}
    benches = registry()
    for name in names:
        bench = benches[name]
        print(f"== {name}: {bench.description}", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            results[name] = await bench.fn(ctx)
        except Skip as why:
            skipped[name] = f"skipped: {why}"
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            skipped[name] = f"FAILED: {type(exc).__name__}: {exc}"
        print(f"   {name} took {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return results, skipped


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    load_all()
    benches = registry()
    if args.list:
        for name, bench in benches.items():
            print(f"{name:28} {bench.description}")
        return 0
    names = [n for n in benches if not args.only or any(n.startswith(p) for p in args.only)]
    if not names:
        print(f"no benchmark matches {args.only}; see --list", file=sys.stderr)
        return 2
    repeats = args.repeats or (3 if args.quick else 5)
    ctx = Context(quick=args.quick, repeats=repeats)
    started = time.monotonic()
    results, skipped = asyncio.run(_run(ctx, names))
    elapsed = time.monotonic() - started
    cores = len(os.sched_getaffinity(0))
    load = os.getloadavg()[0]
    quick = " (QUICK: not for conclusions)" if args.quick else ""
    header = (
        f"Vigil benchmarks: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}, {cores} cores "
        f"(load average {load:.1f} at the end), {repeats} repeats{quick}, {elapsed:.0f} s\n{WHERE}\n"
    )
    print(render_table(results, header))
    for name, why in skipped.items():
        print(f"{name}: {why}")
    out = args.out or RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    meta = {
        "cores": cores,
        "repeats": repeats,
        "quick": args.quick,
        "elapsed_s": elapsed,
        "skipped": skipped,
        "where": WHERE,
    }
    write_json(out, results, meta)
    print(f"\nwritten: {out}")
    return 1 if any(why.startswith("FAILED") for why in skipped.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
