"""Operator text: bounded with a clear INVALID_ARGUMENT, control and format characters escaped."""

from __future__ import annotations

import pytest

from healthd._text import MAX_REASON, escape_controls, operator_text
from services.common import InvalidArgument


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("disk swap, ticket #42 — über", "disk swap, ticket #42 — über"),
        ("a\nb\r\tc", "a\\nb\\r\\tc"),
        ("\x1b[31mred\x00\x7f", "\\x1b[31mred\\x00\\x7f"),
        ("\u202eevil\u200b\u2028", "\\u202eevil\\u200b\\u2028"),
        ("\ud800", "\\ud800"),  # a lone surrogate (JSON allows it) would break the log's encoder
    ],
)
def test_control_and_format_characters_are_escaped(raw: str, shown: str) -> None:
    assert escape_controls(raw) == shown
    assert operator_text(raw, "reason") == shown


def test_over_the_limit_is_refused_naming_field_and_limit() -> None:
    assert operator_text("x" * MAX_REASON, "reason") == "x" * MAX_REASON
    with pytest.raises(
        InvalidArgument, match=f"reason is {MAX_REASON + 1} characters, longer than {MAX_REASON}"
    ) as exc:
        operator_text("x" * (MAX_REASON + 1), "reason")
    assert [v.field for v in exc.value.violations] == ["reason"]
