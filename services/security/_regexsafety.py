"""Caller-supplied schema regexes, matched in linear time by RE2 (never by Python's ``re``).

Python's ``re`` backtracks and cannot be interrupted: ``^.*.*.*.*.*=`` against 220
characters, or ``(a+)+$`` against a few dozen, stalls the whole event loop. JSON Schemas
arrive from callers (ValidateInput, Screen), so the ``pattern``, ``patternProperties`` and
``additionalProperties`` keywords are re-implemented on RE2 (google-re2), whose matching
time is linear in the input whatever the pattern. Patterns RE2 cannot compile (backreferences,
lookaround: features without a linear-time algorithm) are refused, and so are schemas that
would make jsonschema run a pattern through ``re`` itself (``unevaluatedProperties`` next to
``patternProperties``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import re2  # google-re2 ships no type stubs (mypy: ignore_missing_imports)
from jsonschema import ValidationError
from jsonschema import _utils as js_utils
from jsonschema.protocols import Validator
from jsonschema.validators import extend

__all__ = ["linear_validator_class", "python_re_hazard", "risky_pattern", "schema_patterns", "search"]

_MAX_PATTERN_CHARS = 1000
_RE2_MAX_MEM = 8 << 20  # a compiled program over this is refused (bounds memory per pattern)


def _options() -> Any:
    opts = re2.Options()
    opts.max_mem = _RE2_MAX_MEM
    opts.log_errors = False  # refusals are reported to the caller, not printed to stderr
    return opts


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> Any:
    """The RE2 program for ``pattern``; raises ValueError naming why it cannot be one."""
    if len(pattern) > _MAX_PATTERN_CHARS:
        raise ValueError(f"longer than {_MAX_PATTERN_CHARS} characters")
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        detail = str(exc.args[0] if exc.args else exc)
        if detail.startswith(("b'", 'b"')):
            detail = detail[2:-1]
        raise ValueError(
            f"not a linear-time regular expression (RE2 syntax; no backreferences or lookaround): "
            f"{detail[:120]}"
        ) from None
    except (TypeError, OverflowError, MemoryError) as exc:
        raise ValueError(f"not a valid regular expression ({type(exc).__name__})") from None


def risky_pattern(pattern: str) -> str | None:
    """Why ``pattern`` is refused, or None when RE2 compiles it (then it matches in linear time)."""
    try:
        _compile(pattern)
    except ValueError as exc:
        return str(exc)
    return None


def search(pattern: str, text: str) -> bool:
    """True when ``pattern`` (already accepted by `risky_pattern`) matches somewhere in ``text``."""
    return _compile(pattern).search(text) is not None


def _pattern(validator: Validator, patrn: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not search(patrn, instance):
        yield ValidationError(f"{instance[:80]!r} does not match {patrn[:80]!r}")


def _pattern_properties(
    validator: Validator, pattern_properties: dict[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for patrn, subschema in pattern_properties.items():
        for key, value in instance.items():
            if search(patrn, key):
                yield from validator.descend(value, subschema, path=key, schema_path=patrn)


def _additional(instance: dict[str, Any], schema: Any) -> set[str]:
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return {key for key in instance if key not in properties and not any(search(p, key) for p in patterns)}


def _additional_properties(
    validator: Validator, ap: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    extras = _additional(instance, schema)
    if validator.is_type(ap, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], ap, path=extra)
    elif not ap and extras:
        if "patternProperties" in schema:
            joined = ", ".join(repr(e[:80]) for e in sorted(extras)[:20])
            yield ValidationError(f"{joined} do not match any of the property patterns")
        else:
            msg = js_utils.extras_msg(sorted(extras)[:20])
            yield ValidationError(f"Additional properties are not allowed ({msg[0]} {msg[1]} unexpected)")


@functools.cache
def linear_validator_class(cls: type[Validator]) -> type[Validator]:
    """``cls`` with every regex keyword it matches by itself running on RE2."""
    return extend(  # type: ignore[no-any-return]
        cls,
        {
            "pattern": _pattern,
            "patternProperties": _pattern_properties,
            "additionalProperties": _additional_properties,
        },
    )


def _uses(schema: Any, keyword: str) -> bool:
    if isinstance(schema, dict):
        return keyword in schema or any(_uses(v, keyword) for v in schema.values())
    if isinstance(schema, list):
        return any(_uses(v, keyword) for v in schema)
    return False


def python_re_hazard(schema: Any) -> str | None:
    """Why jsonschema itself would run a caller's pattern through ``re`` for ``schema``, or None.

    jsonschema evaluates ``unevaluatedProperties`` by matching ``patternProperties`` keys with
    ``re``; that path is not ours to replace, so the combination is refused.
    """
    if _uses(schema, "unevaluatedProperties") and _uses(schema, "patternProperties"):
        return "unevaluatedProperties cannot be combined with patternProperties here"
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
