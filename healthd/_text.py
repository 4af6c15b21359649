"""Operator-supplied text (a Heal or maintenance reason, a typed component name) on its way
into log lines, events and the audit chain: bounded, and never able to forge a line.

`operator_text` refuses text over `MAX_REASON` characters with INVALID_ARGUMENT (naming the
field and the limit) instead of cutting it silently, and `escape_controls` writes control and
format characters as escapes (``\\n``, ``\\x1b``, ``\\u202e``), so a reason cannot start a
fake ``audit:`` line, move the terminal's cursor or reverse the text around it.
"""

from __future__ import annotations

import unicodedata

from services.common import FieldViolation, InvalidArgument

MAX_REASON = 500
"""Longest reason accepted (characters), from gRPC and the dashboard alike."""
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Control, format (bidi overrides, zero-width), lone surrogates, line/paragraph separators."""
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape_controls(text: str) -> str:
    """``text`` with every control/format character written as an escape; printable text as is."""
    if text.isprintable():  # the common case, without a per-character look-up
        return text
    return "".join(_escape(ch) if unicodedata.category(ch) in _ESCAPED_CATEGORIES else ch for ch in text)


def operator_text(value: str, field: str, limit: int = MAX_REASON) -> str:
    """``value`` made safe for logs and the audit chain (`escape_controls`).

    Raises:
        InvalidArgument: longer than ``limit`` characters.
    """
    if len(value) > limit:
        violation = FieldViolation(field, f"at most {limit} characters")
        raise InvalidArgument(f"{field} is {len(value)} characters, longer than {limit}", [violation])
    return escape_controls(value)
