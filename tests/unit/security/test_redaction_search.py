"""The redactor's search (`Redactor._matches`, `_find`): each recogniser searched on its own,
window by window, finds what one regex joining every recogniser finds over the whole text,
and no single search sees more than its window (issue 16's CI stall)."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.security import RedactionPattern, Redactor
from services.security._recognisers import _SECRET_WORDS, by_first_letter
from tests.unit.security._redaction_support import (
    CORPUS,
    NEEDY,
    RECOGNISER_EXAMPLES,
    REDACTOR,
    joined,
    spans,
)


# Each recogniser searches the text on its own, window by window (`Redactor._matches`,
# `_find`); the matches must be those of one regex joining every recogniser in priority order,
# searched over the whole text: text of the corpus, random text dense in the needs, and long
# text with matches placed across the windows' ends.
@pytest.mark.parametrize("entry", CORPUS, ids=lambda e: str(e.get("text", ""))[:30])
def test_the_recognisers_find_what_their_alternation_finds_on_the_corpus(entry: dict[str, Any]) -> None:
    r = Redactor()
    text = entry["text"]
    assert spans(r._matches(text)) == joined(r, text)


@given(NEEDY)
def test_the_recognisers_find_what_their_alternation_finds(text: str) -> None:
    assert spans(REDACTOR._matches(text)) == joined(REDACTOR, text)


_FILLER = st.sampled_from(["a", " ", "1", "-", ".", "eyJ-", "a:", "x="])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_FILLER, st.integers(0, 2500), NEEDY), min_size=1, max_size=12))
def test_windows_find_in_long_text_what_one_search_finds(pieces: list[tuple[str, int, str]]) -> None:
    # Fillers of random length move the needy fragments across the windows' ends.
    text = "".join(fill * (n // len(fill)) + needy for fill, n, needy in pieces)
    assert spans(REDACTOR._matches(text)) == joined(REDACTOR, text)


@pytest.mark.parametrize("offset", [-20_000, -5000, -300, -17, -1, 0, 1, 200, 3000])
def test_a_long_jwt_across_a_window_end_is_found_whole(offset: int) -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOi" + "x" * 12_000 + ".c2lnbmF0dXJl"
    text = "prefix " * 5000 + " " * (offset + 20_000) + jwt + " tail"
    out, counts = Redactor().redact(text)
    assert counts == {"jwt": 1} and "xxxx" not in out


def _placed(r: Redactor, piece: str, at: int) -> None:
    """``piece`` at offset ``at`` in filler holding no need: found as one search finds it."""
    alone = joined(r, "#" + piece + "#" * 10)  # "#" has no need: the filler changes nothing
    want = [(start + at - 1, end + at - 1, g) for start, end, g in alone]
    assert spans(r._matches("#" * at + piece + "#" * 10)) == want, (piece[:40], at)


def test_matches_across_a_window_end_are_taken_as_one_search_takes_them() -> None:
    # In filler without any need, windows start every 2048 characters and a search with a
    # reach of 1024 sees up to 3072. A short match starting by 2048 ends before that view does;
    # a long one (a private key to the end of the text, a long bearer token, a gcp token of
    # 1000 characters) is cut there and taken again whole, whatever follows it.
    r = REDACTOR
    for examples in RECOGNISER_EXAMPLES.values():
        for example in examples:
            for d in (-40, -20, -5, -1, 0, 1):
                _placed(r, example + "A", 2048 + d - len(example) // 2)
    longs = [
        "-----BEGIN RSA PRIVATE KEY-----\n" + "ab\n" * 700,
        "Authorization: Bearer " + "t0k" * 600,
        "ya29." + "g" * 1000,
        "eyJhbGciOi.eyJzdWIiOi." + "s" * 20_000,
    ]
    for piece in longs:
        for suffix in ("", "A", "7", ".5", "x@", ' "', "-----END RSA PRIVATE KEY-----"):
            for d in (-1100, -30, -17, -16, -15, -1, 0, 1):
                _placed(r, piece + suffix, 2048 + d)


def test_a_match_only_the_cut_made_is_not_taken() -> None:
    # A configured pattern whose look-ahead passes at a window's cut but fails on the text.
    r = Redactor([RedactionPattern(kind="ticket", regex=r"T[0-9]{1,40000}(?![0-9A-Z])")])
    text = "# " * 16_000 + "T" + "1" * 20_000 + "A tail T123 end"
    out, counts = r.redact(text)
    assert counts == {"ticket": 1} and out.endswith("A tail [REDACTED:ticket] end")


class _Spy:
    """A compiled pattern that records how much text each of its searches sees."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern, self.seen = pattern, [0]

    def search(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        self.seen.append(min(endpos, len(text)) - pos)
        return self.pattern.search(text, pos, endpos)

    def match(self, text: str, pos: int = 0) -> re.Match[str] | None:
        return self.pattern.match(text, pos)


@pytest.mark.parametrize("unit", ["eyJ-", "a.1", "1-2-3 ", "a@b:c=d~e ", "Bearer x:"])
def test_no_search_of_a_long_text_sees_more_than_its_window(unit: str) -> None:
    # re holds the interpreter lock for a whole search: one over a megabyte froze the event
    # loop for up to a second (the CI's stall test saw a 3.9 s probe).
    r = Redactor()
    spies = [_Spy(p) for p in r._singles]
    r._singles = spies  # type: ignore[assignment]
    text = (unit * (1 << 20))[: 1 << 20]
    r.redact(text)
    assert any(len(spy.seen) > 1 for spy in spies), "the unit holds no recogniser's need"
    for spy, reach in zip(spies, r._reach, strict=True):
        window = max(2048, 2 * reach) + reach
        assert max(spy.seen) <= window, (spy.pattern.pattern[:40], max(spy.seen))
        assert sum(spy.seen) <= 2 * len(text), spy.pattern.pattern[:40]


_WORDY = st.lists(
    st.sampled_from(
        [*"aZ09.:=_- \"'\n", "pass", "word", "secret", "_key", "token", "api", "sig", "Sig", "PWD"]
    ),
    max_size=30,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(_WORDY)
def test_secret_words_grouped_by_first_letter_match_as_listed(text: str) -> None:
    plain = rf"(?i:(?:[A-Za-z0-9]{{1,24}}[_.-]){{0,3}}(?:{_SECRET_WORDS}))[:=]\w*"
    grouped = rf"(?i:(?:[A-Za-z0-9]{{1,24}}[_.-]){{0,3}}(?:{by_first_letter(_SECRET_WORDS)}))[:=]\w*"
    assert spans(re.finditer(grouped, text)) == spans(re.finditer(plain, text))
