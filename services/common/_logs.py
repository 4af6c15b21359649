"""Log correlation and redaction, plugged into the JSON logger's hooks.

- trace_id / span_id (W3C hex) on every line written inside a recording span, so a
  log line leads to its trace and back;
- fields bound with `log_fields(run_id=..., workflow=...)` for the duration of a block
  (a contextvar: each asyncio task sees its own);
- `keep_operational`: the log rule for redaction, applied to whatever finder the
  process registers (each entry point registers its policy with `set_log_redactor`;
  common knows no service's rules).

Log lines are operational text full of addresses, ports, ids and durations; a
sanitizer's ipv4/ipv6/phone rules match those, and a log that hides which address a
server listens on helps nobody. So a line is rewritten when the finder reports a
secret or personal data (keys, tokens, JWTs, e-mail, card numbers); a line in which
it found only address- or phone-shaped numbers is kept as written.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from opentelemetry import trace

from services.common._logging import add_log_enricher

__all__ = ["install_log_hooks", "keep_operational", "log_fields"]

# Kinds that only look like network addresses or phone numbers (see module docstring).
_OPERATIONAL_KINDS = frozenset({"ipv4", "ipv6", "phone"})

_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "vigil_log_fields", default=None
)
_installed = False


@contextlib.contextmanager
def log_fields(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every log line written in this block (nested blocks merge)."""
    token = _fields.set({**(_fields.get() or {}), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


def _enrich(entry: dict[str, Any]) -> None:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        entry.setdefault("trace_id", format(ctx.trace_id, "032x"))
        entry.setdefault("span_id", format(ctx.span_id, "016x"))
    bound = _fields.get()
    if bound:
        for key, value in bound.items():
            entry.setdefault(key, value)


def keep_operational(finder: Callable[[str], tuple[str, Mapping[str, int]]]) -> Callable[[str], str]:
    """The log rule over ``finder(text) -> (redacted, counts by kind)``: a line keeps its text
    unless ``finder`` found something other than address- or phone-shaped numbers."""

    def apply(text: str) -> str:
        redacted, counts = finder(text)
        if not counts or counts.keys() <= _OPERATIONAL_KINDS:
            return text
        return redacted

    return apply


def install_log_hooks() -> None:
    """Register the enricher once per process (the redactor is the entry point's choice)."""
    global _installed
    if _installed:
        return
    _installed = True
    add_log_enricher(_enrich)
