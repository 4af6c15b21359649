"""Redaction of secrets and personal data: returns the cleaned text and counts by kind, never values.

One combined regex scans the text once, in time linear in its length: every alternative
either has bounded repetition or starts only where its unbounded run starts (so no run is
rescanned from each of its positions; the linearity test in tests/unit/security checks
pathological inputs at sizes n and 4n). Each alternative is a *candidate* that a
checker confirms (Luhn for cards, `ipaddress` for IPs) before it is replaced by
``[REDACTED:<kind>]``. Alternatives earlier in the pattern win at the same position,
so a PEM block or a bearer token is taken whole before its pieces look like anything else.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pydantic import Field

from services.common import ConfigModel, keep_operational, set_log_redactor

__all__ = ["RedactionPattern", "Redactor", "install_log_redaction", "luhn_ok", "redact"]


class RedactionPattern(ConfigModel):
    """An extra, site-specific thing to redact."""

    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    """Name reported in counts and in the replacement marker."""
    regex: str = Field(min_length=1, max_length=1000)
    """Python regular expression of the text to redact."""


def luhn_ok(digits: str) -> bool:
    """True when ``digits`` passes the Luhn checksum (card numbers)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(text: str) -> bool:
    digits = re.sub(r"[ -]", "", text)
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _ip(text: str) -> bool:
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    # Loopback and "any" addresses identify no one; keeping them keeps bind addresses readable.
    return not (addr.is_loopback or addr.is_unspecified)


_PHONE = re.compile(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]?\d{3,4}[ .-]?\d{3,4}")

# (kind, regex, confirm) in priority order.
_BUILTIN: tuple[tuple[str, str, Callable[[str], bool] | None], ...] = (
    (
        "private_key",
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
        None,
    ),
    ("bearer_token", r"(?i:\bbearer)\s+[A-Za-z0-9._~+/=-]{8,}", None),
    ("api_key", r"\bvgl_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}", None),
    (
        "api_key",
        r"\b(?:sk-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|xox[abpr]-[A-Za-z0-9-]{10,}"
        r"|AIza[0-9A-Za-z_-]{35})",
        None,
    ),
    # Starts only where a run of token characters starts: with ``\b`` each "eyJ" inside one long
    # dotless run ("eyJ-eyJ-...") was a start that scanned the rest of it (quadratic).
    ("jwt", r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*", None),
    (
        "email",
        r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b",
        None,
    ),
    ("card", r"(?<![\d.])\d(?:[ -]?\d){12,18}(?![\d.])", _card),
    ("ipv4", r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])", _ip),
    ("ipv6", r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f.]{0,15}(?:%[A-Za-z0-9]+)?(?![\w:])", _ip),
    ("phone", r"(?<![\w+])" + _PHONE.pattern + r"(?!\w)", None),
)

# Every built-in kind needs one of these somewhere in the text; text without any is returned
# unchanged without running the full pattern (most parameter values take this path).
_MAYBE = re.compile(r"[\d@:]|(?i:bearer)|-----|vgl_|sk-|AKIA|gh[pousr]_|xox[abpr]-|AIza|eyJ")

_WINDOW = 32 << 10  # characters searched per call (see `Redactor._matches`)
_OVERLAP = 16 << 10  # matches up to this long are found whole; only a JWT longer than this
# that straddles a window's end could be missed (every other built-in kind is short, or also
# matches truncated and is then searched again whole)
_MAX_TEXT = 1 << 20  # redact at most this much of one string; the rest is cut (and counted)


class Redactor:
    """Compiled redaction patterns. Immutable and safe to share."""

    def __init__(self, extra: Sequence[RedactionPattern] = ()) -> None:
        specs = list(_BUILTIN) + [(p.kind, p.regex, None) for p in extra]
        self._groups: list[tuple[str, Callable[[str], bool] | None]] = []
        parts = []
        for i, (kind, regex, confirm) in enumerate(specs):
            re.compile(regex)  # raises re.error naming a bad configured pattern at start-up
            parts.append(f"(?P<g{i}>{regex})")
            self._groups.append((kind, confirm))
        self._regex = re.compile("|".join(parts))
        self._prefilter = _MAYBE if not extra else None  # configured patterns may need anything

    def redact(self, text: str) -> tuple[str, dict[str, int]]:
        """Return (redacted text, {kind: count}). Values are never returned or logged."""
        if self._prefilter is not None and self._prefilter.search(text) is None:
            return text, {}
        counts: Counter[str] = Counter()
        if len(text) > _MAX_TEXT:
            text = text[:_MAX_TEXT]
            counts["truncated"] += 1

        def replace(m: re.Match[str]) -> str:
            name = m.lastgroup or ""
            kind, confirm = self._groups[int(name[1:])]
            found = m.group()
            if confirm is not None and not confirm(found):
                # A card-shaped number failing Luhn may still be a phone number.
                if kind == "card" and _PHONE.fullmatch(found):
                    kind = "phone"
                else:
                    return found
            counts[kind] += 1
            return f"[REDACTED:{kind}]"

        out: list[str] = []
        done = 0
        for m in self._matches(text):
            out += (text[done : m.start()], replace(m))
            done = m.end()
        out.append(text[done:])
        return "".join(out), dict(counts)

    def _matches(self, text: str) -> Iterator[re.Match[str]]:
        """The matches ``self._regex.sub`` would replace, found one window at a time.

        Python's ``re`` keeps the interpreter lock for a whole search, so one search over a
        megabyte would freeze every other thread (the event loop included) for a second.
        Searching windows of `_WINDOW` (+ `_OVERLAP`) characters bounds each search; ``pos``
        and ``endpos`` keep look-behind and ``\\b`` seeing the real text before the window. A
        match that reaches the window's end may continue past it: it is searched again
        without an end.
        """
        n = len(text)
        pos = 0
        while pos < n:
            stop = pos + _WINDOW
            end = min(stop + _OVERLAP, n)
            m = self._regex.search(text, pos, end)
            if m is not None and m.end() == end < n:
                m = self._regex.search(text, m.start())  # possibly longer than the window
            if m is None or m.start() >= stop:
                pos = stop  # nothing starts in this window (a later match is found again)
                continue
            yield m
            pos = m.end() if m.end() > m.start() else m.end() + 1

    def redact_value(self, value: Any, counts: Counter[str] | None = None) -> tuple[Any, dict[str, int]]:
        """Redact every string (not mapping keys) inside nested dicts/lists; other values unchanged."""
        total: Counter[str] = counts if counts is not None else Counter()

        def walk(v: Any, depth: int) -> Any:
            if isinstance(v, str):
                out, c = self.redact(v)
                total.update(c)
                return out
            if depth > 64:
                return v
            if isinstance(v, dict):
                return {k: walk(x, depth + 1) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [walk(x, depth + 1) for x in v]
            return v

        return walk(value, 0), dict(total)


_DEFAULT = Redactor()


def redact(text: str) -> tuple[str, dict[str, int]]:
    """Redact ``text`` with the built-in patterns; returns (text, counts by kind)."""
    return _DEFAULT.redact(text)


def install_log_redaction() -> None:
    """Make the built-in patterns, under the log rule (`services.common.keep_operational`:
    addresses stay, secrets go), the log policy of this process. Called by each Vigil
    entry point (security, workflow, healthd) at start-up, never by `build`: the policy is
    process-wide, and a test session that builds servers must not change how logs read."""
    set_log_redactor(keep_operational(redact))
