"""How every ``vigil`` command prints: a table or lines for people, ``--json`` for scripts.

Results go to stdout, progress and errors to stderr; an error is one line (no traceback).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

__all__ = ["as_dict", "emit_json", "enum_name", "error", "progress", "table", "when"]


def as_dict(message: Message) -> dict[str, Any]:
    """A message in protobuf's canonical JSON mapping (lowerCamelCase names, enums by name), as
    grpcurl and ``healthd status -json`` print it."""
    return json_format.MessageToDict(message)


def emit_json(value: Any, *, line: bool = False) -> None:
    """Print ``value`` (a message or plain data) as JSON; ``line``: one line (streams: JSON Lines)."""
    if isinstance(value, Message):
        value = as_dict(value)
    print(json.dumps(value, indent=None if line else 2), flush=line)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Left-aligned columns as wide as their widest cell; the last column is not padded."""
    cells = [list(map(str, header)), *([str(c) for c in row] for row in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i < len(widths) - 1 else c for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in cells
    )


def enum_name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix)


def when(ts: Any) -> str:
    """A protobuf Timestamp as local ``YYYY-MM-DD HH:MM:SS.mmm``, or "-" when unset."""
    if not ts.seconds and not ts.nanos:
        return "-"
    moment = dt.datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def error(text: str) -> None:
    first = text.strip().splitlines()[0] if text.strip() else "failed"
    print(f"error: {first}", file=sys.stderr)
