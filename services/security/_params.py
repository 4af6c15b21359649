"""Workflow parameters: JSON Schema validation (jsonschema) and designated-field selection."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
from jsonschema import exceptions as js_exc
from jsonschema.validators import validator_for

from services.security._findings import Finding
from services.security._regexsafety import (
    linear_validator_class,
    python_re_hazard,
    risky_pattern,
    schema_patterns,
)

__all__ = ["ParamsValidator", "check_shape", "select_fields"]

_MAX_DEPTH = 32
_MAX_NODES = 100_000
_PATH_TOKEN = re.compile(r"\[\*\]|\[(\d+)\]|([^.\[\]]+)")


def _json_path(prefix: str, parts: Any) -> str:
    out = prefix
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def check_shape(field: str, value: object) -> list[Finding]:
    """Bound nesting depth and size before any recursive validator sees the value."""
    stack: list[tuple[object, int]] = [(value, 0)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > _MAX_NODES:
            return [Finding("PARAMS_TOO_LARGE", field, -1, f"more than {_MAX_NODES} values")]
        if depth > _MAX_DEPTH:
            return [Finding("PARAMS_TOO_DEEP", field, -1, f"nested deeper than {_MAX_DEPTH} levels")]
        if isinstance(node, dict):  # JSON-like values: concrete types (ABC checks are slow here)
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend((v, depth + 1) for v in node)
    return []


class ParamsValidator:
    """Validates parameters against one JSON Schema, compiled once."""

    def __init__(self, schema: Mapping[str, Any], *, max_findings: int = 50) -> None:
        cls = validator_for(schema)
        try:
            cls.check_schema(schema)
        except js_exc.SchemaError as exc:
            raise ValueError(
                f"invalid JSON Schema at {'/'.join(map(str, exc.path)) or '<root>'}: {exc.message}"
            ) from None
        for where, regex in schema_patterns(schema):
            why = risky_pattern(regex)
            if why is not None:
                raise ValueError(f"refused JSON Schema pattern at {where or '<root>'}: {why}")
        hazard = python_re_hazard(schema)
        if hazard is not None:
            raise ValueError(f"refused JSON Schema: {hazard}")
        # Every pattern the validator runs goes through RE2 (linear time in the input).
        self._validator = linear_validator_class(cls)(schema, format_checker=cls.FORMAT_CHECKER)
        self.schema = schema
        self.max_findings = max_findings

    def validate(self, field: str, params: object, *, shape_checked: bool = False) -> list[Finding]:
        """Return one finding per schema violation (bounded). Never raises on any input.

        ``shape_checked`` skips the depth/size bound when the caller already applied `check_shape`.
        """
        shape = [] if shape_checked else check_shape(field, params)
        if shape:
            return shape
        out: list[Finding] = []
        try:
            for err in self._validator.iter_errors(params):
                code = f"SCHEMA_{str(err.validator).upper()}"
                msg = err.message if len(err.message) <= 300 else err.message[:297] + "..."
                out.append(Finding(code, _json_path(field, err.absolute_path), -1, msg))
                if len(out) >= self.max_findings:
                    break
        except (RecursionError, js_exc.ValidationError, jsonschema.exceptions.UnknownType) as exc:
            out.append(
                Finding("SCHEMA_UNCHECKABLE", field, -1, f"cannot check against schema: {type(exc).__name__}")
            )
        return sorted(out, key=lambda f: f.field)


def select_fields(params: object, spec: str, prefix: str = "params") -> Iterator[tuple[str, object]]:
    """Yield (field path, value) for each value ``spec`` designates.

    ``spec`` is a dotted path with ``[*]`` for every list item and ``[n]`` for one,
    e.g. ``inputs[*].path``. Missing keys yield nothing (the schema decides presence).
    """
    tokens = [(m.group(0), m.group(1), m.group(2)) for m in _PATH_TOKEN.finditer(spec)]
    frontier: list[tuple[str, object]] = [(prefix, params)]
    for whole, index, key in tokens:
        nxt: list[tuple[str, object]] = []
        for path, node in frontier:
            if whole == "[*]" and isinstance(node, (list, tuple)):
                nxt.extend((f"{path}[{i}]", v) for i, v in enumerate(node))
            elif index is not None and isinstance(node, (list, tuple)) and int(index) < len(node):
                nxt.append((f"{path}[{index}]", node[int(index)]))
            elif key is not None and isinstance(node, dict) and key in node:
                nxt.append((f"{path}.{key}", node[key]))
        frontier = nxt
    yield from frontier
