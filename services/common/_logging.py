"""JSON-lines logging to stderr, one object per line.

Each line has ``ts`` (UTC, RFC 3339), ``level``, ``logger``, ``msg`` and any ``extra=``
fields of the call. Two hooks let later concerns join without this module
knowing them: enrichers add fields (trace_id/span_id from the current span), and ONE
redactor rewrites text, applied to the message and every string field. The redactor is
the process's log policy, registered by its entry point with `set_log_redactor`; a
single slot (not a list) so two policies can never stack (a stricter one would undo
what the other keeps on purpose).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "add_log_enricher", "configure_logging", "get_logger", "set_log_redactor"]

_enrichers: list[Callable[[dict[str, Any]], None]] = []
_redactor: Callable[[str], str] | None = None

# LogRecord attributes that are plumbing, not fields the caller passed with extra=.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def add_log_enricher(fn: Callable[[dict[str, Any]], None]) -> None:
    """Register ``fn(entry)`` to add fields to every log entry (must not raise)."""
    _enrichers.append(fn)


def set_log_redactor(fn: Callable[[str], str] | None) -> None:
    """Make ``fn(text) -> text`` THE redaction policy of this process's log lines, replacing
    any earlier one (None: lines are written as they are). Call once, at start-up."""
    global _redactor
    _redactor = fn


def _redact(text: str) -> str:
    return text if _redactor is None else _redactor(text)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": _redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = _redact(self.formatException(record.exc_info))
        for enrich in _enrichers:
            enrich(entry)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Send all logging to ``stream`` (stderr) as JSON lines at ``level``; idempotent."""
    root = logging.getLogger()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]
    root.setLevel(level)


def get_logger(name: str) -> logging.Logger:
    """A logger under the ``vigil.`` hierarchy."""
    return logging.getLogger(name if name.startswith("vigil") else f"vigil.{name}")
