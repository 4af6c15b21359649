"""Prompt validation: limits, control/invisible characters, homoglyphs, encoded and plain injections.

Detection runs on a *skeleton* of the text (NFKC-normalized, invisible characters
dropped, common Cyrillic/Greek look-alikes folded to Latin, lower-cased) that keeps a
map back to original positions, so ``ign\u200bore previous instructions`` and
``\u0456gnore previous instructions`` (Cyrillic i) are caught and reported where they start.
Base64 and hex blobs that decode to text are scanned too (``ENCODED_INJECTION``).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass

from pydantic import Field

from services.common import ConfigModel
from services.security._findings import Finding

__all__ = ["PromptLimits", "PromptValidator"]


class PromptLimits(ConfigModel):
    """Limits and extra patterns for prompt fields."""

    max_chars: int = Field(default=20_000, ge=1, le=1_000_000)
    """Longest prompt accepted, in characters."""
    max_tokens: int = Field(default=4_096, ge=1, le=1_000_000)
    """Most tokens accepted (a word or a punctuation mark counts as one)."""
    extra_injection_patterns: tuple[str, ...] = ()
    """Additional case-insensitive regexes treated as prompt injection."""
    max_findings: int = Field(default=20, ge=1, le=1000)
    """Stop reporting after this many findings in one field."""


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U0001d173-\U0001d17a\U000e0000-\U000e007f]"
)
# Joiners and variation selectors are legitimate in emoji and several scripts: warn, do not block.
_SOFT_INVISIBLE = frozenset("\u200c\u200d") | frozenset(chr(c) for c in range(0xFE00, 0xFE10))
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w+")
_B64 = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}){16,}\b")

# Look-alikes NFKC leaves alone: Cyrillic and Greek letters that render like Latin ones.
_CONFUSABLES = str.maketrans(
    "аеорсухіјѕԁԛԝһӏкмнтвАЕОРСУХІЈЅКМНТВαεοριτυνκχΑΕΟΡΙΤΥΝΚΧΒΜΗΖ",
    "aeopcyxijsdqwhlkmhtbaeopcyxijskmhtbaeopitvvkxaeopityvkxbmhz",
)

_INJECTION_PATTERNS = (
    r"\b(?:ignore|disregard|forget|override|skip|bypass)\s+(?:all\s+|any\s+|the\s+|your\s+|my\s+|of\s+)*"
    r"(?:previous|prior|above|earlier|preceding|original|system|initial|existing|safety)?\s*"
    r"(?:instructions?|prompts?|rules|directions|guidelines|directives|context|constraints)",
    r"\bforget\s+(?:everything|all)\b",
    r"\b(?:ignore|disregard|forget)\s+(?:all\s+|everything\s+|the\s+|of\s+)*(?:above|previous|prior|preceding)\b",
    r"\byou\s+are\s+now\s+(?:an?\s+)?(?:unrestricted|unfiltered|jailbroken|dan|evil|free)",
    r"\bfrom\s+now\s+on,?\s+you\s+(?:are|will|must)\b",
    r"\bact\s+as\s+(?:an?\s+)?(?:unrestricted|unfiltered|jailbroken|dan|root|admin|system)",
    r"\bdo\s+anything\s+now\b|\bdeveloper\s+mode\b|\bjail\s*break",
    r"\b(?:reveal|print|show|repeat|output|leak|dump)\s+(?:me\s+)?(?:your|the)\s+(?:hidden\s+|system\s+|initial\s+)*"
    r"(?:prompt|instructions)",
    r"\bsystem\s+prompt\b",
    r"\bnew\s+instructions?\s*:",
    r"<\|?\s*(?:im_start|im_end|system|endoftext)\s*\|?>",
    r"\[/?inst\]|</?\s*system\s*>|#{2,}\s*(?:system|instruction)",
    r"\bpretend\s+(?:you\s+are|to\s+be)\b|\broleplay\s+as\b",
    r"\b(?:disable|turn\s+off|remove|bypass|circumvent|evade)\s+(?:your\s+|the\s+|all\s+)*(?:safety|content|security)\s+"
    r"(?:filters?|guidelines|guardrails|restrictions|policies|rules|checks)",
    r"\bwithout\s+(?:any\s+)?(?:restrictions|filters|limitations|censorship)\b",
)


@dataclass(frozen=True)
class _Skeleton:
    text: str
    origin: tuple[int, ...] | None  # skeleton index -> original index; None = identity


def _skeleton(text: str) -> _Skeleton:
    if _NON_ASCII.search(text) is None:
        return _Skeleton(text.lower(), None)
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        if _INVISIBLE.match(ch):
            continue
        folded = unicodedata.normalize("NFKC", ch).translate(_CONFUSABLES).lower()
        chars.append(folded)
        origin.extend([i] * len(folded))
    return _Skeleton("".join(chars), tuple(origin))


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    head = name.split(" ", 1)[0]
    return head if head in ("LATIN", "CYRILLIC", "GREEK") else ""


class PromptValidator:
    """Validates prompt text; patterns are compiled once per instance."""

    def __init__(self, limits: PromptLimits | None = None) -> None:
        self.limits = limits or PromptLimits()
        patterns = _INJECTION_PATTERNS + self.limits.extra_injection_patterns
        self._injection = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)

    def validate(self, field: str, value: object) -> list[Finding]:
        """Return findings for ``value`` (empty when clean). Never raises on any input."""
        if not isinstance(value, str):
            return [Finding("NOT_TEXT", field, -1, f"expected text, got {type(value).__name__}")]
        lim = self.limits
        out: list[Finding] = []
        if len(value) > lim.max_chars:
            out.append(
                Finding("PROMPT_TOO_LONG", field, lim.max_chars, f"longer than {lim.max_chars} characters")
            )
            value = value[: lim.max_chars]  # inspect the accepted prefix only; bounded work
        tokens = len(_TOKEN.findall(value))
        if tokens > lim.max_tokens:
            out.append(
                Finding("PROMPT_TOO_MANY_TOKENS", field, -1, f"{tokens} tokens, limit {lim.max_tokens}")
            )
        for m in _CONTROL.finditer(value):
            out.append(Finding("CONTROL_CHAR", field, m.start(), f"control character U+{ord(m.group()):04X}"))
            if len(out) >= lim.max_findings:
                return out
        if _NON_ASCII.search(value) is not None:
            for m in _INVISIBLE.finditer(value):
                ch = m.group()
                msg = f"invisible character U+{ord(ch):04X}"
                out.append(
                    Finding("INVISIBLE_CHAR", field, m.start(), msg, blocking=ch not in _SOFT_INVISIBLE)
                )
                if len(out) >= lim.max_findings:
                    return out
            out.extend(self._homoglyphs(field, value))
        skel = _skeleton(value)
        for m in self._injection.finditer(skel.text):
            pos = skel.origin[m.start()] if skel.origin else m.start()
            obfuscated = skel.origin is not None and self._plain_misses(value, pos)
            code = "OBFUSCATED_INJECTION" if obfuscated else "PROMPT_INJECTION"
            out.append(Finding(code, field, pos, "text looks like a prompt-injection instruction"))
            if len(out) >= lim.max_findings:
                return out
        out.extend(self._encoded(field, value))
        return out[: lim.max_findings]

    def _plain_misses(self, value: str, pos: int) -> bool:
        # The skeleton matched; if the untouched text (lower-cased) does not match around the same
        # place, the instruction was disguised with look-alikes or invisible characters.
        return self._injection.search(value[pos : pos + 400].lower()) is None

    def _homoglyphs(self, field: str, value: str) -> list[Finding]:
        found = []
        for m in _WORD.finditer(value):
            word = m.group()
            if word.isascii():
                continue
            scripts = {_script(ch) for ch in word if ch.isalpha()} - {""}
            if "LATIN" in scripts and len(scripts) > 1:
                # A warning: mixed-script words occur in real text; disguised injections are blocked
                # separately (OBFUSCATED_INJECTION) because detection runs on the folded skeleton.
                msg = f"word mixes scripts {sorted(scripts)}"
                found.append(Finding("HOMOGLYPH", field, m.start(), msg, blocking=False))
        return found

    def _encoded(self, field: str, value: str) -> list[Finding]:
        found = []
        for regex, decode in ((_B64, _b64_text), (_HEX, _hex_text)):
            for m in regex.finditer(value):
                decoded = decode(m.group())
                if decoded and self._injection.search(_skeleton(decoded).text):
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
