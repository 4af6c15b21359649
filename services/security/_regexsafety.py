"""Refuse regular expressions prone to catastrophic backtracking (caller-supplied schema patterns).

Python's ``re`` cannot be interrupted, so a pattern such as ``(a+)+$`` run against
``"aaaa…!"`` would stall the whole server. Patterns arrive in JSON Schemas that any
authenticated caller may send (ValidateInput), so before compiling a schema we refuse
patterns with a repetition or an alternation inside an unbounded repetition, the shapes
behind exponential backtracking. The check is conservative: some safe patterns
(``(?:x+y)+``, ``(ab|cd)+``) are refused too.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from re import _parser as _sre  # type: ignore[attr-defined]  # private but stable; sre_parse's successor
from typing import Any

__all__ = ["risky_pattern", "schema_patterns"]

_REPEATS = tuple(
    getattr(_sre, n) for n in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(_sre, n)
)
_MAX_PATTERN_CHARS = 1000


def _children(op: Any, arg: Any) -> list[Any]:
    if op in _REPEATS:
        return [arg[2]]
    if op == _sre.SUBPATTERN:
        return [arg[-1]]
    if op == _sre.BRANCH:
        return list(arg[1])
    return []


def _contains_ambiguity(items: Any) -> bool:
    """True when ``items`` holds any repetition or alternation (ways to match the same text twice)."""
    for op, arg in items:
        if op in _REPEATS or op == _sre.BRANCH:
            return True
        if any(_contains_ambiguity(child) for child in _children(op, arg)):
            return True
    return False


def _nested(items: Any) -> bool:
    for op, arg in items:
        if op in _REPEATS:
            _, high, sub = arg
            if (high == _sre.MAXREPEAT or high > 10) and _contains_ambiguity(sub):
                return True
        if any(_nested(child) for child in _children(op, arg)):
            return True
    return False


def risky_pattern(pattern: str) -> str | None:
    """Why ``pattern`` is refused, or None when it is acceptable."""
    if len(pattern) > _MAX_PATTERN_CHARS:
        return f"longer than {_MAX_PATTERN_CHARS} characters"
    try:
        with warnings.catch_warnings():  # FutureWarnings about odd sets in caller input are not ours
            warnings.simplefilter("ignore")
            parsed = _sre.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"not a valid regular expression ({type(exc).__name__})"
    if _nested(list(parsed)):
        return "a repetition or alternation inside an unbounded repetition (catastrophic backtracking)"
    return None


def schema_patterns(schema: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Yield (location, regex) for every ``pattern`` and ``patternProperties`` key in a schema."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            where = f"{path}/{key}"
            if key == "pattern" and isinstance(value, str):
                yield where, value
            elif key == "patternProperties" and isinstance(value, dict):
                for regex, sub in value.items():
                    yield f"{where}/{regex[:40]}", regex
                    yield from schema_patterns(sub, f"{where}/{regex[:40]}")
            else:
                yield from schema_patterns(value, where)
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from schema_patterns(value, f"{path}/{i}")
