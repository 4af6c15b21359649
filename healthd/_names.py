"""Component names as operators type them: full configured names or unambiguous short names.

``vigil.workflow.v1.WorkflowService`` is ``workflow`` for short (the package segment before
the version); other names are their own short name. A replica's files and log prefix use
``<short>-<replica>`` when the component has more than one replica.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from healthd._text import escape_controls
from services.common import FieldViolation, InvalidArgument, NotFound

MAX_QUERY = 256
"""Longest name ``resolve`` looks up: no component name is longer, and the did-you-mean
search over a multi-megabyte query held healthd's loop for seconds (readiness answered in 3.8 s)."""
_VERSIONED = re.compile(r"^(?:[\w-]+\.)*?([\w-]+)\.v\d+\w*\.\w+$")


def short_name(name: str) -> str:
    """``workflow`` for ``vigil.workflow.v1.WorkflowService``; file-safe otherwise."""
    match = _VERSIONED.match(name)
    return (match.group(1) if match else name).replace("/", "_")


def unit_key(component: str, replica: int, replicas: int) -> str:
    """File stem of one replica's log and record: ``workflow`` or ``workflow-2``."""
    short = short_name(component)
    return short if replicas == 1 else f"{short}-{replica}"


def unit_name(component: str, replica: int, replicas: int) -> str:
    """Internal name of one replica (its scheduler key and log prefix): ``name`` or ``name#2``."""
    return component if replicas == 1 else f"{component}#{replica}"


def resolve(query: str, names: Sequence[str], field: str = "component") -> str:
    """The configured name ``query`` stands for.

    Exact name first, then exact short name, then a unique case-insensitive substring.

    Raises:
        InvalidArgument: empty, longer than `MAX_QUERY`, or matching several components.
        NotFound: matching none (with the closest names suggested).
    """
    if not query:
        raise InvalidArgument(f"{field} is required", [FieldViolation(field, "must name a component")])
    if len(query) > MAX_QUERY:
        violation = FieldViolation(field, f"at most {MAX_QUERY} characters")
        raise InvalidArgument(f"{field} is {len(query)} characters, longer than {MAX_QUERY}", [violation])
    if query in names:
        return query
    shown = escape_controls(query)  # echoed in the error (and so in client logs)
    by_short = [n for n in names if short_name(n) == query]
    if len(by_short) == 1:
        return by_short[0]
    lowered = query.lower()
    partial = by_short or [n for n in names if lowered in n.lower()]
    if len(partial) == 1:
        return partial[0]
    if partial:
        raise InvalidArgument(
            f"'{shown}' matches several components: {', '.join(sorted(partial))}",
            [FieldViolation(field, "must name exactly one component")],
        )
    candidates = {short_name(n): n for n in names} | {n: n for n in names}
    close = difflib.get_close_matches(query, list(candidates), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(candidates[c]) for c in close)}?" if close else ""
    known = ", ".join(short_name(n) for n in names)
    raise NotFound(f"unknown component '{shown}'{hint} (known: {known})")
