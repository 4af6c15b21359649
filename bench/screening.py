"""Security input checks: prompt-injection detection rates on the corpus, and CPU time of the
worst adversarial input known for each validator and the sanitizer (issue 13).

Both run in this process on the validators themselves (no server: the figures are about the
checks, not the transport). Rates are deterministic; CPU times are this thread's CPU seconds
(time.thread_time), the least of three runs per repeat, so machine load hardly moves them.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._registry import Context, benchmark
from bench._report import Figure, Target
from services.security import ParamsValidator, PathValidator, PromptValidator, Redactor
from services.security._trajectory import TrajectorySpec, TrajectoryValidator
from tests.data.prompt_corpus import load, rates

_CORPUS_NOTE = (
    "tests/data/prompt_corpus.jsonl: {n} prompts ({inj} injections in 6 languages and 10 obfuscations, "
    "{ben} benign prompts using the same words); weights tuned on the 'tune' split only"
)


@benchmark(
    "security.prompt_corpus", "prompt-injection detector: missed injections and flagged benign prompts"
)
async def prompt_corpus(ctx: Context) -> list[Figure]:
    entries = load()
    validator = PromptValidator()
    whole = rates(entries, validator)
    held = rates([e for e in entries if e.split == "holdout"], validator)
    fresh = rates([e for e in entries if e.kind == "fresh"], validator)
    note = _CORPUS_NOTE.format(n=len(entries), inj=whole.injections, ben=whole.benign)
    return [
        Figure(
            "missed injections (corpus)",
            "%",
            [100 * whole.false_negative_rate],
            target=Target.at_most(20),
            note=note,
        ),
        Figure("benign flagged (corpus)", "%", [100 * whole.false_positive_rate], target=Target.at_most(5)),
        Figure(
            "missed injections (held out)", "%", [100 * held.false_negative_rate], target=Target.at_most(20)
        ),
        Figure("benign flagged (held out)", "%", [100 * held.false_positive_rate], target=Target.at_most(5)),
        Figure(
            "missed injections (fresh)",
            "%",
            [100 * fresh.false_negative_rate],
            note="fresh: 30 held-out prompts written after tuning, in new phrasings",
        ),
        Figure("benign flagged (fresh)", "%", [100 * fresh.false_positive_rate]),
    ]


def _cpu_s(fn: Callable[[], Any]) -> float:
    best = math.inf
    gc.disable()
    try:
        for _ in range(3):
            start = time.thread_time()
            fn()
            best = min(best, time.thread_time() - start)
    finally:
        gc.enable()
    return best


def _worst_inputs() -> dict[str, tuple[str, Callable[[], Any]]]:
    """name -> (what, the call), each the worst input found for that check (see the linear-time tests)."""
    prompt = PromptValidator()
    redactor = Redactor()
    paths = PathValidator([Path("/tmp")])
    traj = TrajectoryValidator(TrajectorySpec(time_required=True))
    params = ParamsValidator({"properties": {"s": {"type": "string", "pattern": "^.*.*.*.*.*="}}})
    heavy = (("1-2-3-4-5 " * 50 + "a@b " + "::::::" * 100 + "bearer " + "1.2.3." * 100) * 700)[: 1 << 20]
    return {
        "prompt": (
            "'ignore all' + 19000 spaces (15.3 s before)",
            lambda: prompt.validate("p", "ignore all" + " " * 19000 + "x"),
        ),
        "sanitize jwt": ("'eyJ-' x 80000, 320 KB (34.7 s before)", lambda: redactor.redact("eyJ-" * 80_000)),
        "sanitize 1 MiB": ("1 MiB of separators, digits, '@', 'bearer'", lambda: redactor.redact(heavy)),
        "path": ("'%2e%2e/' x 512 (the 4096-character limit)", lambda: paths.validate("p", "%2e%2e/" * 512)),
        "trajectory": (
            "10000 points x 60 values",
            lambda: traj.validate("t", [[float(i)] + [1.0] * 59 for i in range(10_000)]),
        ),
        "params": (
            "'^.*.*.*.*.*=' on 1 MB of 'x'",
            lambda: params.validate("params", {"s": "x" * 1_000_000}),
        ),
    }


@benchmark(
    "security.worst_inputs", "CPU seconds of the worst adversarial input per validator and the sanitizer"
)
async def worst_inputs(ctx: Context) -> list[Figure]:
    figures = []
    for name, (what, call) in _worst_inputs().items():
        samples = [_cpu_s(call) for _ in range(ctx.repeats)]
        figures.append(Figure(f"{name} worst input", "s", samples, target=Target.at_most(1.0), note=what))
    return figures
