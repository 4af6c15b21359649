"""Numeric command-line values, checked when parsed: a bad one is argparse's one-line usage
error (exit 2 for ``vigil``, 1 for the grpc_health_probe-style commands), never a traceback,
a hang on a NaN deadline or a protobuf "Value out of range" after dialling.

Ranges are the encodable ones (int32 fields) or the documented ones; the server's own
validation (e.g. priority -100..100) still answers INVALID_ARGUMENT for values it refuses.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["INT32_MAX", "MAX_SECONDS", "check_seconds", "int_in", "seconds"]

INT32_MAX = 2**31 - 1
MAX_SECONDS = 86_400.0
"""Longest deadline a flag takes (a day): a call that should wait longer should not block."""


def check_seconds(value: float, text: str) -> float:
    """``value`` (parsed from ``text``) if it is a finite number of seconds in (0, `MAX_SECONDS`].

    Raises:
        argparse.ArgumentTypeError: NaN, infinite, zero, negative or longer than a day.
    """
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: must be a positive number of seconds")
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: at most {MAX_SECONDS:g} seconds")
    return value


def seconds(text: str) -> float:
    """argparse ``type=`` for a deadline in seconds (``2.5``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: must be a number of seconds") from None
    return check_seconds(value, text)


def int_in(low: int, high: int) -> Callable[[str], int]:
    """argparse ``type=`` for a decimal integer in [low, high]."""

    def parse(text: str) -> int:
        stripped = text.strip()
        digits = stripped.removeprefix("-")
        # isascii+isdigit: int() would take "٣" and "1_000"; and a bounded length before int().
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 20:
            raise argparse.ArgumentTypeError(f"invalid integer {text!r}")
        value = int(stripped)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: must be between {low} and {high}")
        return value

    parse.__name__ = "integer"  # argparse names the type in some messages
    return parse
