"""Prompt validation: size limits, control/invisible characters, homoglyphs, plain and disguised
injections (scored, see `_injection`), and base64/hex blobs that decode to injections.

Limits are checked first: a prompt over ``max_chars`` is refused (``PROMPT_TOO_LONG``)
before any pattern runs, so the work per prompt is bounded. Every pattern runs on RE2
(linear time whatever the text). Injection scoring runs on folded views of the text
(`_textnorm`: NFKC, look-alikes, invisible characters, leetspeak, spelled-out words),
which map back to original positions, so findings say where the instruction starts.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import unicodedata
from typing import Any

import re2  # google-re2 ships no type stubs (mypy: ignore_missing_imports)
from pydantic import Field, field_validator

from services.common import ConfigModel
from services.security._findings import Finding
from services.security._injection import InjectionScorer, Score, check_pattern
from services.security._textnorm import fold

__all__ = ["PromptLimits", "PromptValidator"]


class PromptLimits(ConfigModel):
    """Limits and extra patterns for prompt fields."""

    max_chars: int = Field(default=20_000, ge=1, le=1_000_000)
    """Longest prompt accepted, in characters; longer ones are refused before any matching."""
    max_tokens: int = Field(default=4_096, ge=1, le=1_000_000)
    """Most tokens accepted (a word or a punctuation mark counts as one)."""
    extra_injection_patterns: tuple[str, ...] = ()
    """Additional case-insensitive RE2 regexes treated as prompt injection (matched on the folded text)."""
    max_findings: int = Field(default=20, ge=1, le=1000)
    """Stop reporting after this many findings in one field."""

    @field_validator("extra_injection_patterns")
    @classmethod
    def _re2_only(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for p in patterns:
            why = check_pattern(p)
            if why is not None:
                raise ValueError(f"pattern {p[:60]!r}: {why}")
        return patterns


def _re2(pattern: str) -> Any:
    opts = re2.Options()
    opts.log_errors = False
    return re2.compile(pattern, opts)


_CONTROL = _re2(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_INVISIBLE = _re2(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U0001d173-\U0001d17a\U000e0000-\U000e007f]"
)
# Joiners and variation selectors are legitimate in emoji and several scripts: warn, do not block.
_SOFT_INVISIBLE = frozenset("\u200c\u200d") | frozenset(chr(c) for c in range(0xFE00, 0xFE10))
# Two alternatives with disjoint first characters, no nesting: linear in Python's re, whose
# findall counts tokens without a Python call per token.
_TOKEN = re.compile(r"\w+|[^\w\s]")
_MIXED_WORD = _re2(r"[\pL\pN_]*[^\x00-\x7f][\pL\pN_]*")
_B64 = _re2(r"[A-Za-z0-9+/_-]{24,}={0,2}")
_HEX = _re2(r"\b(?:[0-9a-fA-F]{2}){16,}\b")
_MAX_BLOBS = 16  # encoded blobs decoded per prompt (each decode is linear; this bounds the total)
_SCRIPTS = {"LATIN", "CYRILLIC", "GREEK"}


def _script(ch: str) -> str:
    head = unicodedata.name(ch, "").split(" ", 1)[0]
    return head if head in _SCRIPTS else ""


class PromptValidator:
    """Validates prompt text; patterns are compiled once per instance. Thread-safe (reads only)."""

    def __init__(self, limits: PromptLimits | None = None) -> None:
        self.limits = limits or PromptLimits()
        self.scorer = InjectionScorer(self.limits.extra_injection_patterns)

    def score(self, value: str) -> Score:
        """The injection score of ``value`` (no limits applied; the caller bounds the size)."""
        return self.scorer.score(fold(value))

    def validate(self, field: str, value: object) -> list[Finding]:
        """Return findings for ``value`` (empty when clean). Never raises on any input."""
        if not isinstance(value, str):
            return [Finding("NOT_TEXT", field, -1, f"expected text, got {type(value).__name__}")]
        lim = self.limits
        if len(value) > lim.max_chars:
            msg = f"longer than {lim.max_chars} characters (limit prompt.max_chars)"
            return [Finding("PROMPT_TOO_LONG", field, lim.max_chars, msg)]
        out: list[Finding] = []  # injections first: a flood of other findings must not hide them
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates: not text gRPC could carry, nor RE2 match
            out.append(Finding("INVALID_UNICODE", field, exc.start, "lone surrogate in text"))
            value = value.encode("utf-8", "replace").decode("utf-8")  # one '?' each: positions kept
        out.extend(self._injection(field, value))
        out.extend(self._encoded(field, value))
        tokens = len(_TOKEN.findall(value))
        if tokens > lim.max_tokens:
            msg = f"more than {lim.max_tokens} tokens (limit prompt.max_tokens)"
            out.append(Finding("PROMPT_TOO_MANY_TOKENS", field, -1, msg))
        for m in itertools.islice(_CONTROL.finditer(value), lim.max_findings):
            out.append(Finding("CONTROL_CHAR", field, m.start(), f"control character U+{ord(m.group()):04X}"))
        if len(out) >= lim.max_findings:
            return out[: lim.max_findings]
        if not value.isascii():
            for m in itertools.islice(_INVISIBLE.finditer(value), lim.max_findings):
                ch = m.group()
                msg = f"invisible character U+{ord(ch):04X}"
                out.append(
                    Finding("INVISIBLE_CHAR", field, m.start(), msg, blocking=ch not in _SOFT_INVISIBLE)
                )
            if len(out) >= lim.max_findings:
                return out[: lim.max_findings]
            out.extend(self._homoglyphs(field, value))
        return out[: lim.max_findings]

    def _injection(self, field: str, value: str) -> list[Finding]:
        folded = fold(value)
        score = self.scorer.score(folded)
        if not score.flagged:
            return []
        # Flagged on the folded views; if the plain reading (case and spaces only) is not, the
        # instruction was disguised (look-alikes, invisible characters, leetspeak, split words).
        disguised = folded.changed and not self.scorer.score(fold(value, undisguise=False)).flagged
        code = "OBFUSCATED_INJECTION" if disguised else "PROMPT_INJECTION"
        msg = f"text looks like a prompt-injection instruction ({', '.join(score.signals[:4])})"
        return [Finding(code, field, max(score.position, 0), msg)]

    def _homoglyphs(self, field: str, value: str) -> list[Finding]:
        found = []
        for m in itertools.islice(_MIXED_WORD.finditer(value), self.limits.max_findings):
            word = m.group()
            scripts = {_script(ch) for ch in word if ch.isalpha()} - {""}
            if "LATIN" in scripts and len(scripts) > 1:
                # A warning: mixed-script words occur in real text; disguised injections are blocked
                # separately (OBFUSCATED_INJECTION) because detection runs on the folded views.
                msg = f"word mixes scripts {sorted(scripts)}"
                found.append(Finding("HOMOGLYPH", field, m.start(), msg, blocking=False))
        return found

    def _encoded(self, field: str, value: str) -> list[Finding]:
        found = []
        for regex, decode in ((_B64, _b64_text), (_HEX, _hex_text)):
            for m in itertools.islice(regex.finditer(value), _MAX_BLOBS):
                decoded = decode(m.group())
                if decoded and self.score(decoded).flagged:
                    found.append(
                        Finding("ENCODED_INJECTION", field, m.start(), "encoded blob decodes to an injection")
                    )
        return found


def _printable_text(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(ch.isprintable() or ch in "\n\r\t" for ch in text)
    return text if text and printable >= 0.9 * len(text) else None


def _b64_text(blob: str) -> str | None:
    blob = blob.rstrip("=")
    padded = blob + "=" * (-len(blob) % 4)
    try:
        if "-" in blob or "_" in blob:
            raw = base64.urlsafe_b64decode(padded)
        else:
            raw = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _printable_text(raw)


def _hex_text(blob: str) -> str | None:
    try:
        return _printable_text(bytes.fromhex(blob))
    except ValueError:
        return None
