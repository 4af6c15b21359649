"""No input makes a validator or the sanitizer superlinear (issue 13: ReDoS).

Pathological inputs are generated (hypothesis) from pieces that make backtracking
matchers rescan (runs of separators after a keyword, repeated token starts, encodings,
nested shapes) at two sizes, n and 4n. CPU time of the calling thread is measured (the
minimum of three runs, garbage collection paused), so a loaded machine slows both sizes
alike: linear growth is about 4x, quadratic 16x; the bound is 8x (plus a floor for timer
noise) and, loosely, 20 ms of CPU per KB. The review's own inputs are plain tests beside.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.security import ParamsValidator, PathValidator, PromptLimits, PromptValidator, Redactor
from services.security._trajectory import TrajectorySpec, TrajectoryValidator

MS_PER_KB = 20.0
GROWTH = 8.0
NOISE_S = 0.05
SETTINGS = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def cpu_s(fn: Callable[[], Any]) -> float:
    """The least CPU time (this thread) of three runs of ``fn``."""
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


def assert_linear(what: str, run: Callable[[Any], Any], small: Any, large: Any, large_kb: float) -> None:
    t1 = cpu_s(lambda: run(small))
    t4 = cpu_s(lambda: run(large))
    print(f"{what}: {t1 * 1000:.1f} ms -> {t4 * 1000:.1f} ms at 4x ({t4 * 1000 / large_kb:.2f} ms/KB)")
    assert t4 <= GROWTH * t1 + NOISE_S, f"{what}: {t1:.3f} s at n, {t4:.3f} s at 4n (superlinear)"
    assert t4 * 1000 / large_kb <= MS_PER_KB, f"{what}: {t4:.3f} s for {large_kb:.0f} KB"


def repeat_to(unit: str, n: int) -> str:
    return (unit * (n // max(len(unit), 1) + 1))[:n]


# --- prompts -------------------------------------------------------------------------------

PROMPT = PromptValidator(PromptLimits(max_chars=200_000, max_tokens=1_000_000, max_findings=1000))
PROMPT_PIECES = [
    " ",
    "\t",
    "\n",
    "ignore",
    "ignore ",
    "all ",
    "the ",
    "previous",
    "instructions",
    "\u200b",
    "\u200d",
    "-",
    ".",
    "i g n o r e ",
    "1gn0r3",
    "\u0456",
    "\uff49",
    "=",
    "aGVsbG8",
    "0a1b",
    "you are now ",
    "<|",
    "pay no attention to ",
    "don t ",
    "system prompt ",
    "é",
    "\u202e",
    "\x07",
    "reveal your ",
    "x",
]
PREFIXES = ["", "ignore all", "ignore ", "reveal your", "you are now", "pay no attention to", "act as"]
units = st.lists(st.sampled_from(PROMPT_PIECES), min_size=1, max_size=5).map("".join)


@SETTINGS
@given(prefix=st.sampled_from(PREFIXES), unit=units)
def test_prompt_validation_is_linear(prefix: str, unit: str) -> None:
    n = 5000
    small = prefix + repeat_to(unit, n) + "x"
    large = prefix + repeat_to(unit, 4 * n) + "x"
    assert_linear(
        f"prompt {prefix!r}+{unit!r}*", lambda t: PROMPT.validate("p", t), small, large, 4 * n / 1024
    )


def test_the_reviews_prompt_inputs_are_fast() -> None:
    v = PromptValidator()
    worst = "ignore all" + " " * 19000 + "x"  # 15.3 s of CPU before the fix (quadratic)
    assert cpu_s(lambda: v.validate("p", worst)) < 1.0
    for text in ("ignore " * 30000, "\u200b" * 60000):  # over the 20000-character limit: refused first
        found = v.validate("p", text)
        assert [f.code for f in found] == ["PROMPT_TOO_LONG"]
        assert "limit prompt.max_chars" in found[0].message
        assert cpu_s(lambda t=text: v.validate("p", t)) < 0.05  # type: ignore[misc]
    for text in ("\u200b" * 60000, "ignore all " + "\u200b " * 30000 + "x"):  # under a raised limit
        assert cpu_s(lambda t=text: PROMPT.validate("p", t)) < 2.0  # type: ignore[misc]


# --- the sanitizer -------------------------------------------------------------------------

REDACTOR = Redactor()
SANITIZE_PIECES = [
    "eyJ",
    "-",
    ".",
    "@",
    "a",
    "1",
    "9",
    " ",
    "bearer ",
    ":",
    "%",
    "-----BEGIN ",
    "PRIVATE KEY-----",
    "vgl_",
    "sk-",
    "+",
    "(",
    ")",
    "AKIA",
    "ghp_",
    "xoxb-",
    "AIza",
    "0x",
    "::",
    "f",
    "_",
    "=",
    "\n",
]
sanitize_units = st.lists(st.sampled_from(SANITIZE_PIECES), min_size=1, max_size=6).map("".join)


@SETTINGS
@given(unit=sanitize_units)
def test_sanitize_is_linear(unit: str) -> None:
    n = 25_000
    assert_linear(
        f"sanitize {unit!r}*", REDACTOR.redact, repeat_to(unit, n), repeat_to(unit, 4 * n), 4 * n / 1024
    )


def test_the_reviews_sanitize_inputs_are_fast() -> None:
    assert cpu_s(lambda: REDACTOR.redact("eyJ-" * 80_000)) < 2.0  # 34.7 s before (quadratic)
    heavy = ("1-2-3-4-5 " * 50 + "a@b " + "::::::" * 100 + "bearer " + "1.2.3." * 100) * 600
    assert cpu_s(lambda: REDACTOR.redact(heavy[: 1 << 20])) < 5.0  # the Sanitize limit: 1 MiB


# --- paths ---------------------------------------------------------------------------------

PATH_PIECES = [
    "%2e",
    "%25",
    "../",
    "..",
    "/",
    "\\",
    "%u002e",
    "a",
    "\uff0e",
    "\u2215",
    ".. ",
    "...",
    "%c0%ae",
    "b/",
]
path_units = st.lists(st.sampled_from(PATH_PIECES), min_size=1, max_size=4).map("".join)


@SETTINGS
@given(unit=path_units)
def test_path_validation_is_linear(unit: str) -> None:
    paths = PathValidator([Path("/tmp")])
    n = 1000  # the limit is 4096 characters
    assert_linear(
        f"path {unit!r}*",
        lambda p: paths.validate("p", p),
        repeat_to(unit, n),
        repeat_to(unit, 4 * n),
        4 * n / 1024,
    )


# --- trajectories --------------------------------------------------------------------------

POINTS: list[Callable[[int], object]] = [
    lambda i: [float(i), 1.0, 2.0],
    lambda i: {"t": float(i), "values": [1.0, 2.0]},
    lambda i: [float(i), math.nan],
    lambda i: [float(-i), 10**400],
    lambda i: [True, 1.0],
    lambda i: [float(i)] * 60,
    lambda i: {"t": float(i), "values": [[1.0]]},
    lambda i: "x",
]


@SETTINGS
@given(kinds=st.lists(st.integers(0, len(POINTS) - 1), min_size=1, max_size=3))
def test_trajectory_validation_is_linear(kinds: list[int]) -> None:
    validator = TrajectoryValidator(TrajectorySpec(time_required=True, max_points=100_000, max_findings=1000))

    def build(n: int) -> list[object]:
        return [POINTS[kinds[i % len(kinds)]](i) for i in range(n)]

    n = 2500
    assert_linear(
        f"trajectory {kinds}", lambda v: validator.validate("t", v), build(n), build(4 * n), 4 * n * 0.1
    )


# --- params and schemas --------------------------------------------------------------------

SCHEMA_PATTERNS = ["^.*.*.*.*.*=", "(a+)+$", "^(\\d+)*x", "^(a|aa)+$", "^([a-z0-9]+\\.)*[a-z]+@", ".*a.*b.*c"]
TEXT_PIECES = ["a", "aa", "1", ".", "=", "x", "@", " ", "b", "c"]


@SETTINGS
@given(
    pattern=st.sampled_from(SCHEMA_PATTERNS),
    unit=st.lists(st.sampled_from(TEXT_PIECES), min_size=1, max_size=4).map("".join),
)
def test_params_validation_is_linear(pattern: str, unit: str) -> None:
    schema = {
        "type": "object",
        "properties": {"s": {"type": "string", "pattern": pattern}},
        "patternProperties": {pattern: {"type": "string"}},
        "additionalProperties": {"type": "string", "pattern": pattern},
    }
    validator = ParamsValidator(schema)

    def build(n: int) -> dict[str, object]:
        text = repeat_to(unit, n) + "!"
        return {"s": text, text[:2000]: text, "other": text}

    n = 20_000
    assert_linear(
        f"params {pattern!r} {unit!r}*",
        lambda p: validator.validate("params", p),
        build(n),
        build(4 * n),
        12 * n / 1024,
    )
