"""The built-in recognisers of the redaction policy: which shapes of text are secrets or personal data.

Each `Recogniser` is a *candidate* regex, an optional checker that confirms it (Luhn for
cards, `ipaddress` for IPs) and, for "name = value" shapes, a `keep` regex: the part of the
match it matches (the name, the URL up to the password) stays, only the value is replaced.
Order is priority: at one position the earlier recogniser wins, so a PEM block or a
bearer token is taken whole before its pieces look like anything else.

Linear time (`Redactor` searches the text for each recogniser, window by window): a
recogniser either has bounded repetition (each start costs a constant) or may start only
where a run of its own characters starts (a look-behind excluding them), so no run is
rescanned from each of its positions. The classic trap is
``\\b`` before a prefix that can recur inside the run (``"eyJ-" * 80000``: each ``-e`` is a
word boundary); tests/unit/security/test_linear_time.py checks n vs 4n for every piece.

Look-alikes that must survive (tests/data/redaction_corpus.jsonl): ``1e9`` printed as
``1000000000.0``, versions ``1.2.3``, timestamps (epoch seconds, milliseconds, RFC 3339),
UUIDs, ports, durations, byte counts. So a phone needs a ``+`` or separators between its
groups (a bare 10-digit number is a timestamp far more often), a card starts with 2-6 (the
issuer ranges; epoch milliseconds start with 1) and is 13-19 digits in one run or in groups
of four, and no number adjoining a decimal point is taken.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BUILTIN", "MAYBE", "Recogniser", "luhn_ok"]


@dataclass(frozen=True)
class Recogniser:
    kind: str
    """Reported in counts and in the ``[REDACTED:<kind>]`` marker."""
    regex: str
    confirm: Callable[[str], bool] | None = None
    """Confirms a candidate match; a refused candidate is kept as written."""
    keep: re.Pattern[str] | None = None
    """Matches the leading part of a match that stays (a parameter's name), if any."""
    needs: str = ""
    """A regex of what every match contains (``@`` for an email): text without it cannot hold
    one, so `Redactor` does not search such text for this recogniser."""
    reach: int = 1 << 10
    """Invariant: wherever this recogniser matches, it also matches there (perhaps shorter) in
    the text cut ``reach`` characters after that start. `Redactor` searches a long text in
    windows that look this far past their end, so it holds for every built-in kind whose
    matches are bounded (the longest, an email, is 729 characters) or match when cut (a
    bearer token, a private key up to ``\\Z``); only a JWT needs its header and payload whole."""


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
    digits = "".join(c for c in text if c.isdigit())
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _ip(text: str) -> bool:
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    # Loopback, "any", reserved (netmasks) and multicast addresses identify no one; keeping them
    # keeps bind addresses readable.
    return not (addr.is_loopback or addr.is_unspecified or addr.is_reserved or addr.is_multicast)


def _phone(text: str) -> bool:
    # E.164 numbers have at most 15 digits; fewer than 7 is an extension or a small quantity.
    return 7 <= sum(c.isdigit() for c in text) <= 15


# Names whose value is a secret: "password=...", "api_key: ...", '"client_secret": "..."',
# "AWS_SECRET_ACCESS_KEY=...". A name may carry a prefix ("db_password", "x-api-key") but the
# secret word must end it: "password_file", "max_tokens" and "token_count" are not secrets.
_SECRET_WORDS = (
    r"password|passwd|passphrase|pwd|secret|secret[_-]?key|secret[_-]?access[_-]?key|token"
    r"|access[_-]?token|refresh[_-]?token|auth[_-]?token|api[_-]?key|apikey|access[_-]?key"
    r"|private[_-]?key|client[_-]?secret|credentials?|account[_-]?key|sas[_-]?token|signature|sig"
)


def by_first_letter(words: str) -> str:
    """``words`` (an alternation of lower-case words) grouped by first letter, each group's
    words in their order: the same matches at each place, but a place whose letter starts no
    word is refused after one test per letter instead of one per word (the secret name is
    tried after every separator of a text, which made it half of a long text's redaction)."""
    groups: dict[str, list[str]] = {}
    for word in words.split("|"):
        groups.setdefault(word[0], []).append(word[1:])
    return "|".join(f"{first}(?:{'|'.join(rest)})" for first, rest in groups.items())


_SECRET_NAME = (
    r"(?i:(?<![A-Za-z0-9])(?:[A-Za-z0-9]{1,24}[_.-]){0,3}"
    rf"(?:{by_first_letter(_SECRET_WORDS)}))"
)
# The value: quoted (anything but the quote, on one line) or bare (up to a separator). An
# already redacted value is left alone (redaction is idempotent).
_SECRET_VALUE = (
    r"(?![\"']?(?:\[REDACTED:|\$\{|(?:null|true|false|none)\b))"
    r"(?:\"[^\"\n]{1,256}\"|'[^'\n]{1,256}'|[^\s\"'&,;<>{}\[\]]{1,256})"
)
_ASSIGN = r"[\"']?[ \t]{0,4}[:=][ \t]{0,4}"
_KEEP_ASSIGN = re.compile(_SECRET_NAME + _ASSIGN + r"[\"']?(?=.)")

# scheme://user:password@host: the password goes, the rest stays readable.
_URL_USERINFO = (
    r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{1,19}://[^\s/:@]{0,64}:(?!\[REDACTED:)[^\s/@]{1,128}(?=@)"
)
_KEEP_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,19}://[^\s/:@]{0,64}:")

_SEP = r"[ .\-_/]"  # what people put between a card's groups
_CARD = (
    r"(?<![\w.\-/+])[2-6]\d{3}"
    rf"(?:\d{{9,15}}|{_SEP}\d{{4}}{_SEP}\d{{4}}{_SEP}\d{{1,7}}|{_SEP}\d{{6}}{_SEP}\d{{4,5}})"
    r"(?![\w]|[.\-/]\d)"
)

# +<country> then groups with separators, or (area) then groups, or groups of 2-4, 3-4 and
# exactly 4 digits with separators; French-style pairs; E.164 written without separators.
_PHONE = (
    r"(?<![\w+.\-/:])(?:"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,5}(?:[ .-]\d{2,6}){1,4}"
    r"|\+\d{8,14}"
    r"|\(\d{2,4}\)[ .-]?\d{3,4}[ .-]\d{4}"
    r"|\d{2,4}[ .-]\d{3,4}[ .-]\d{4}"
    r"|0\d(?:[ .]\d{2}){4}"
    r")(?![\w]|[.\-:/]\d)"
)

BUILTIN: tuple[Recogniser, ...] = (
    Recogniser(
        "private_key",
        r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----|\Z)",
        needs="-----",
    ),
    # A token has a digit or punctuation in its first 256 characters, or is long: "the bearer
    # instrument" is prose.
    Recogniser(
        "bearer_token",
        r"(?i:\bbearer)\s{1,8}(?:(?=[A-Za-z]{0,256}[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,}|[A-Za-z]{20,})",
        needs="(?i:bearer)",
    ),
    Recogniser(
        "basic_auth",
        r"(?i:\bauthorization[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?basic)[ \t]{1,8}[A-Za-z0-9+/]{4,}={0,2}",
        needs="(?i:basic)",
    ),
    Recogniser("api_key", r"\bvgl_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}", needs="vgl_"),
    Recogniser(
        "api_key",
        r"(?<![A-Za-z0-9_-])(?:sk|rk)[-_](?:live_|test_|proj-)?[A-Za-z0-9_-]{20,200}",
        needs="[sr]k[-_]",
    ),
    # An access key id with its secret beside it (CSV exports, "aws configure list"): both go.
    Recogniser(
        "aws_credentials",
        r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}[\s,;:|\"'=]{1,8}[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
        needs="A[A-Z]{2}A",
    ),
    # AWS access key ids: AKIA (long-term), ASIA (temporary), and the other IAM id prefixes.
    Recogniser(
        "aws_access_key",
        r"(?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA|APKA)[0-9A-Z]{16}(?![A-Za-z0-9])",
        needs="A[A-Z]{2}A",
    ),
    Recogniser("gcp_api_key", r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])", needs="AIza"),
    Recogniser("gcp_token", r"(?<![A-Za-z0-9_.-])ya29\.[0-9A-Za-z_-]{20,1000}", needs="ya29"),
    # Azure AD client secrets: three characters, a digit, "Q~", then 31-34 more.
    Recogniser(
        "azure_secret", r"(?<![\w~.-])[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![\w~.-])", needs="~"
    ),
    Recogniser(
        "github_token",
        r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_])",
        needs="gh[pousr]_|github_pat_",
    ),
    Recogniser("slack_token", r"(?<![A-Za-z0-9-])xox[abeoprs]-[A-Za-z0-9-]{10,250}", needs="xox"),
    Recogniser(
        "slack_webhook",
        r"(?i:hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_-]{8,200}",
        needs="(?i:hooks)",
    ),
    # Starts only where a run of token characters starts: with ``\b`` each "eyJ" inside one long
    # dotless run ("eyJ-eyJ-...") was a start that scanned the rest of it (quadratic).
    Recogniser(
        "jwt",
        r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
        needs="eyJ",
        reach=16 << 10,  # a token whose header and payload are longer may be missed across a cut
    ),
    Recogniser("password", _URL_USERINFO, keep=_KEEP_URL, needs=":"),
    Recogniser("secret", _SECRET_NAME + _ASSIGN + _SECRET_VALUE, keep=_KEEP_ASSIGN, needs="[:=]"),
    Recogniser(
        "email",
        r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}\b",
        needs="@",
    ),
    Recogniser("card", _CARD, _card, needs=r"\d"),
    Recogniser("ipv4", r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])", _ip, needs=r"\d"),
    Recogniser(
        "ipv6",
        r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f.]{0,15}(?:%[A-Za-z0-9]{1,64})?(?![\w:])",
        _ip,
        needs=":",
    ),
    Recogniser("phone", _PHONE, _phone, needs=r"\d"),
)

# Text holding none of the built-in recognisers' needs is returned unchanged without running
# any pattern (most parameter values take this path); every recogniser states one.
# The one-character needs go first, as one class: this runs on every string redacted.
_ONE_CHAR = {r"\d": r"\d", "@": "@", ":": ":", "[:=]": ":=", "~": "~"}
assert all(r.needs for r in BUILTIN)
MAYBE = re.compile(
    "|".join(
        [
            "[" + "".join(dict.fromkeys(_ONE_CHAR[r.needs] for r in BUILTIN if r.needs in _ONE_CHAR)) + "]",
            *dict.fromkeys(r.needs for r in BUILTIN if r.needs not in _ONE_CHAR),
        ]
    )
)
