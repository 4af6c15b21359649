"""The redaction policy: one `Redactor` for every boundary (params keys and values, labels,
audit fields, error messages, logs). Returns the cleaned text and counts by kind, never values.

The recognisers (what is a secret, what only looks like one) are in `_recognisers.py`. Text
holding none of their needs (``@`` for an email, a digit for a card) is returned at once.
Otherwise each recogniser whose need occurs in it searches it on its own, a long text window
by window (see `_find`: no single search holds the interpreter lock for long), and the
matches are taken leftmost first, as one regex joining every recogniser in priority order
would take them (the same matches in a fraction of the time: a lone pattern keeps re's
literal-prefix scan, which the alternation loses). A confirmed match is replaced by
``[REDACTED:<kind>]``, keeping the name of a "name = value" pair
(``password=[REDACTED:secret]``). Redaction is idempotent: a marker is never matched
again, so text redacted at one boundary passes the next unchanged.
Mapping keys are redacted like values (a token used as a params key must not be stored);
two keys that redact alike stay distinct (``[REDACTED:email]``, ``[REDACTED:email]#2``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from pydantic import Field

from services.common import ConfigModel, keep_operational, set_log_redactor
from services.security._recognisers import BUILTIN, MAYBE, luhn_ok

__all__ = ["RedactionPattern", "Redactor", "install_log_redaction", "luhn_ok", "redact", "redact_message"]


class RedactionPattern(ConfigModel):
    """An extra, site-specific thing to redact."""

    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    """Name reported in counts and in the replacement marker."""
    regex: str = Field(min_length=1, max_length=1000)
    """Python regular expression of the text to redact."""


# (kind, keep, confirm) of each alternative, by group index; see `Recogniser`.
_Spec = tuple[str, re.Pattern[str] | None, Callable[[str], bool] | None]


_WINDOW = 2 << 10  # least characters a search may start a match in (see `_find`)
_SLACK = 16  # a match ending this near a cut may go on (or a look-ahead fail) past it
_CONFIGURED_REACH = 16 << 10  # the `Recogniser.reach` assumed of a configured pattern
_MAX_TEXT = 1 << 20  # redact at most this much of one string; the rest is cut (and counted)
_CLEAN_CHARS = 256  # texts up to this long found to hold nothing are remembered (`_clean`)
_CLEAN_ENTRIES = 4096
_LITERAL = re.compile(r"[A-Za-z0-9_~:@-]+")
_CASELESS = re.compile(r"\(\?i:(.+)\)")


def _need_test(need: str) -> Callable[[str], bool]:
    """Whether a text holds ``need`` (a regex; a substring test when it is a plain literal,
    of the lowered text when it is a case-insensitive one)."""
    if _LITERAL.fullmatch(need):
        return lambda text: need in text
    folded = _CASELESS.fullmatch(need)
    if folded is not None and _LITERAL.fullmatch(folded.group(1)):
        word = folded.group(1).lower()
        return lambda text: word in text.lower()
    pattern = re.compile(need)
    return lambda text: pattern.search(text) is not None


class Redactor:
    """Compiled redaction patterns, safe to share across threads. Its only mutable state is a
    bounded memo of short texts found to hold nothing (audit fields, credential ids, level
    names and recurring parameter values repeat on every request). A text that had something
    redacted is never remembered; what the recognisers miss (a bare value under a ``password``
    key, say) may stay in it until it is emptied, as it stays in the stored params."""

    def __init__(self, extra: Sequence[RedactionPattern] = ()) -> None:
        specs = [(r.kind, r.regex, r.keep, r.confirm, r.needs, r.reach) for r in BUILTIN]
        specs += [(p.kind, p.regex, None, None, "", _CONFIGURED_REACH) for p in extra]
        self._groups: list[_Spec] = []
        self._parts: list[str] = []  # "(?P<g{index}>regex)": a match's lastgroup names its spec
        self._reach: list[int] = []
        needs: dict[str, list[int]] = {}  # need -> the recognisers (by index) that need it
        self._always: list[int] = []  # configured patterns: they may need anything
        for i, (kind, regex, keep, confirm, need, reach) in enumerate(specs):
            re.compile(regex)  # raises re.error naming a bad configured pattern at start-up
            self._parts.append(f"(?P<g{i}>{regex})")
            self._groups.append((kind, keep, confirm))
            self._reach.append(reach)
            if need:
                needs.setdefault(need, []).append(i)
            else:
                self._always.append(i)
        self._prefilter = MAYBE if not self._always else None
        self._singles = [re.compile(part) for part in self._parts]
        self._needs = [(_need_test(need), ids) for need, ids in needs.items()]
        # Short clean texts -> None. Emptied when full (a flood of distinct texts costs only
        # misses); plain dict operations are atomic under the GIL, so threads may share it.
        self._clean: dict[str, None] = {}

    def _candidates(self, text: str) -> list[int]:
        """The recognisers (by index, in priority order) that may match in ``text``: those whose
        need occurs in it, and every configured pattern."""
        ids = [i for test, members in self._needs if test(text) for i in members]
        return sorted({*ids, *self._always}) if self._always else sorted(ids)

    def _matches(self, text: str) -> Iterator[re.Match[str]]:
        """The matches one regex joining every recogniser in priority order would replace in
        ``text``, from the candidate recognisers searched one by one: at each step the leftmost
        start wins and, at one start, the earliest recogniser (the alternation's order); a
        recogniser absent from the candidates cannot match at all."""

        def find(i: int, pos: int) -> re.Match[str] | None:
            return _find(self._singles[i], text, pos, self._reach[i]) if pos <= len(text) else None

        nxt: dict[int, re.Match[str] | None] = {i: find(i, 0) for i in self._candidates(text)}
        while True:
            best: re.Match[str] | None = None
            for m in nxt.values():  # in priority order: a tie keeps the earlier recogniser
                if m is not None and (best is None or m.start() < best.start()):
                    best = m
            if best is None:
                return
            yield best
            pos = best.end() if best.end() > best.start() else best.end() + 1
            for i, m in nxt.items():
                if m is not None and m.start() < pos:
                    nxt[i] = find(i, pos)

    def redact(self, text: str) -> tuple[str, dict[str, int]]:
        """Return (redacted text, {kind: count}). Values are never returned or logged."""
        short = len(text) <= _CLEAN_CHARS
        if short and text in self._clean:
            return text, {}
        # The prefilter is one search of the whole text: only for texts one window long.
        if self._prefilter is not None and len(text) <= _WINDOW and self._prefilter.search(text) is None:
            if short:
                self._remember_clean(text)
            return text, {}
        counts: Counter[str] = Counter()
        if len(text) > _MAX_TEXT:
            text = text[:_MAX_TEXT]
            counts["truncated"] += 1

        def replace(m: re.Match[str]) -> str:
            name = m.lastgroup or ""
            kind, keep, confirm = self._groups[int(name[1:])]
            found = m.group()
            if confirm is not None and not confirm(found):
                return found
            counts[kind] += 1
            if keep is None:
                return f"[REDACTED:{kind}]"
            return _keep_name(found, keep, f"[REDACTED:{kind}]")

        out: list[str] = []
        done = 0
        for m in self._matches(text):
            out += (text[done : m.start()], replace(m))
            done = m.end()
        out.append(text[done:])
        if not counts and short:
            self._remember_clean(text)
        return "".join(out), dict(counts)

    def _remember_clean(self, text: str) -> None:
        if len(self._clean) >= _CLEAN_ENTRIES:
            self._clean.clear()
        self._clean[text] = None

    def redact_value(self, value: Any, counts: Counter[str] | None = None) -> tuple[Any, dict[str, int]]:
        """Redact every string inside nested dicts/lists, mapping keys included; other values
        unchanged. Keys that redact alike stay distinct (a ``#2``, ``#3`` suffix, in order)."""
        total: Counter[str] = counts if counts is not None else Counter()

        def text(s: str) -> str:
            out, c = self.redact(s)
            total.update(c)
            return out

        def walk(v: Any, depth: int) -> Any:
            if isinstance(v, str):
                return text(v)
            if depth > 64:
                return v
            if isinstance(v, dict):
                return self._redact_mapping(v, text, lambda x: walk(x, depth + 1))
            if isinstance(v, (list, tuple)):
                return [walk(x, depth + 1) for x in v]
            return v

        return walk(value, 0), dict(total)

    @staticmethod
    def _redact_mapping(
        mapping: Mapping[Any, Any], key_text: Callable[[str], str], value: Callable[[Any], Any]
    ) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for k, x in mapping.items():
            key = key_text(k) if isinstance(k, str) else k
            if key in out and key != k:  # two secrets redacted alike: keep both entries
                n = 2
                while f"{key}#{n}" in out:
                    n += 1
                key = f"{key}#{n}"
            out[key] = value(x)
        return out


def _find(pattern: re.Pattern[str], text: str, pos: int, reach: int) -> re.Match[str] | None:
    """``pattern.search(text, pos)``, in searches of at most ``window + reach`` characters.

    Python's ``re`` keeps the interpreter lock for a whole search, and a recogniser costs up to
    about a microsecond per character of text it passes: one search of a megabyte would freeze
    the event loop, and every thread, for a second. So a long text is searched a window at a
    time (``window`` = max(`_WINDOW`, 2 * reach): each character is searched about 1.5
    times), each search seeing ``reach`` characters past the window's end (``pos`` and
    ``endpos`` keep look-behind and ``\\b`` seeing the real text before it). By
    `Recogniser.reach`, a match starting in the window matches in that view too; one that
    ends near the view's end may go on past it, so the pattern is matched again at its start
    with the rest of the text in view (one attempt at one place, as long as the match). A
    match that starts beyond the window is found again by the next one.
    """
    n = len(text)
    window = max(_WINDOW, 2 * reach)
    while n - pos > window + reach:
        stop = pos + window
        end = stop + reach
        m = pattern.search(text, pos, end)
        if m is None or m.start() >= stop:
            pos = stop
        elif m.end() <= end - _SLACK:
            return m
        else:
            whole = pattern.match(text, m.start())
            if whole is not None:
                return whole
            pos = m.start() + 1  # it matched only because the view was cut
    return pattern.search(text, pos)


def _keep_name(found: str, keep: re.Pattern[str], marker: str) -> str:
    """``found`` with only its value replaced: the name (what ``keep`` matches) and a closing
    quote that matches the opening one stay, so JSON and key=value text keep their shape."""
    m = keep.match(found)
    if m is None:
        return marker
    head = m.group()
    tail = (
        found[-1] if head and head[-1] in "\"'" and len(found) > len(head) and found[-1] == head[-1] else ""
    )
    return f"{head}{marker}{tail}"


_DEFAULT = Redactor()


def redact(text: str) -> tuple[str, dict[str, int]]:
    """Redact ``text`` with the built-in patterns; returns (text, counts by kind)."""
    return _DEFAULT.redact(text)


def redact_message(text: str) -> str:
    """``text`` under the message rule (`services.common.keep_operational`): rewritten when a
    secret or personal data is in it, kept as written when only addresses or phone-shaped
    numbers are. The policy of log lines and of error messages that are stored or served
    (a run's error), where "connect to 10.1.2.3:5432 failed" must stay readable."""
    return _MESSAGE_RULE(text)


_MESSAGE_RULE = keep_operational(redact)


def install_log_redaction() -> None:
    """Make the built-in patterns, under the log rule (`services.common.keep_operational`:
    addresses stay, secrets go), the log policy of this process. Called by each Vigil
    entry point (security, workflow, healthd) at start-up, never by `build`: the policy is
    process-wide, and a test session that builds servers must not change how logs read."""
    set_log_redactor(redact_message)
