"""Folded views of untrusted text for injection matching, each mapped back to original positions.

Disguises undone, in one linear pass per view:

- Unicode compatibility forms (NFKC: full-width and mathematical letters), then
  diacritics dropped (``précédentes`` -> ``precedentes``) and case folded (``ß`` -> ``ss``);
- look-alike letters NFKC leaves alone (Cyrillic i U+0456, Greek omicron U+03BF) folded to Latin;
- invisible characters (format controls such as zero-width, bidi and tag characters, soft
  hyphens, Hangul fillers, variation selectors) dropped;
- leetspeak inside words that also hold letters (``1gn0r3`` -> ``ignore``; ``2024`` stays);
- letters spelled out one by one (``i g n o r e``, ``i-g-n-o-r-e``) joined into a word.

`fold` returns three views: ``text`` (folded, punctuation kept, whitespace runs collapsed
to one space: chat-template tokens such as ``<|im_start|>`` are matched here), ``words``
(only letter/digit words separated by one space: phrases are matched here) and
``compact`` (the words without spaces: catches words split inside, ``ig nore in struc tions``).
In ``words``, sentence punctuation is kept as a "." word, so phrase gaps do not cross sentences.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["Folded", "fold", "fold_char"]

# Look-alikes NFKC leaves alone: Cyrillic and Greek letters that render like Latin ones, and a few
# Latin variants (dotless i, script g, small capitals).
_CONFUSABLES = str.maketrans(
    "аеорсухіјѕԁԛԝһӏкмнтвьАЕОРСУХІЈЅКМНТВαεοριτυνκχΑΕΟΡΙΤΥΝΚΧΒΜΗΖıɡɪʟɴʀᴀᴇᴏ",
    "aeopcyxijsdqwhlkmhtbbaeopcyxijskmhtbaeopitvvkxaeopityvkxbmhzigilnraeo",
)
# Invisible characters that are not format controls (category Cf is dropped wholesale).
_INVISIBLE_EXTRA = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0")
_LEET = str.maketrans("013457@$8", "oieastasb")
_LEET_CHARS = frozenset("013457@$8")
_JOINERS = frozenset("-._*")
_SENTENCE = frozenset(".!?;:")
# Fixed-width character classes and a loop whose pieces cannot overlap: linear in Python's re.
_RUN = re.compile(r"\S+")
_W = r"(?:[^\W_]|[@$])+"
_WORD_OR_STOP = re.compile(rf"{_W}|[.!?;:]")
_JOINED_OR_STOP = re.compile(rf"{_W}(?:[-._*]{_W})*|[.!?;:]")
_FOLD_CACHE: dict[str, str] = {}
_FOLD_CACHE_MAX = 20_000  # distinct non-ASCII characters remembered (bounds memory)


def fold_char(ch: str) -> str:
    """The folded form of one character ("" for invisible ones)."""
    if ch < "\x80":
        return ch.lower()
    cached = _FOLD_CACHE.get(ch)
    if cached is not None:
        return cached
    cat = unicodedata.category(ch)
    if cat == "Cf" or cat.startswith("M") or ch in _INVISIBLE_EXTRA:
        out = ""
    elif cat.startswith("Z"):
        out = " "
    else:
        nfkd = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", ch))
        out = "".join(c for c in nfkd if not unicodedata.category(c).startswith("M"))
        out = out.translate(_CONFUSABLES).casefold()
    if len(_FOLD_CACHE) < _FOLD_CACHE_MAX:
        _FOLD_CACHE[ch] = out
    return out


@dataclass(frozen=True)
class View:
    """One folded form of the text; ``origin[i]`` is the original index of ``text[i]``."""

    text: str
    origin: tuple[int, ...]

    def position(self, index: int) -> int:
        """The original position of view index ``index`` (clamped)."""
        if not self.origin:
            return 0
        return self.origin[min(max(index, 0), len(self.origin) - 1)]


@dataclass(frozen=True)
class Folded:
    """The three views of one text (see the module docstring)."""

    text: View
    words: View
    compact: View
    changed: bool
    """True when folding changed anything beyond case and whitespace (a disguise may be present)."""


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch in "@$"


def fold(value: str, *, undisguise: bool = True) -> Folded:
    """Fold ``value`` into its three views. Linear in ``len(value)``.

    ``undisguise=False`` only lower-cases and collapses whitespace: the plain reading, used to
    tell whether a match needed the folding (an obfuscated instruction) or not.
    """
    if value.isascii():  # the common case: folding is lower-casing; whole runs at C speed
        chars: list[str] = []
        origin: list[int] = []
        for m in _RUN.finditer(value):
            chars.append(m.group().lower())
            origin.extend(range(m.start(), m.end()))
            chars.append(" ")
            origin.append(m.end())
        text = View("".join(chars)[:-1], tuple(origin[:-1]))
        changed = False
    else:
        text, changed = _fold_unicode(value, undisguise)
    words, compact, split_joined = _words(text, undisguise)
    return Folded(text, words, compact, changed or split_joined)


def _fold_unicode(value: str, undisguise: bool) -> tuple[View, bool]:
    """The text view of non-ASCII ``value`` (character by character), and whether folding changed it."""
    chars: list[str] = []
    origin: list[int] = []
    changed = False
    space = True  # collapse leading whitespace too
    for i, ch in enumerate(value):
        folded = fold_char(ch) if undisguise else ch.lower()
        if folded != ch.lower() and not (folded == " " and ch.isspace()):
            changed = True
        for c in folded:
            if c.isspace():
                if space:
                    continue
                c, space = " ", True
            else:
                space = False
            chars.append(c)
            origin.append(i)
    if chars and chars[-1] == " ":
        chars.pop()
        origin.pop()
    return View("".join(chars), tuple(origin)), changed


def _tokens(text: View, undisguise: bool) -> list[tuple[str, list[int]]]:
    """Words of ``text``, and "." for each run of sentence punctuation between them.

    Undisguising, a joiner (``-`` ``.`` ``_`` ``*``) between two word characters joins them:
    ``i-g-n-o-r-e``, ``I.G.N.O.R.E`` and ``instru-ctions`` become one word.
    """
    tokens: list[tuple[str, list[int]]] = []
    chars, origin = text.text, text.origin
    for m in (_JOINED_OR_STOP if undisguise else _WORD_OR_STOP).finditer(chars):
        word = m.group()
        if len(word) == 1 and word in _SENTENCE:
            if tokens and tokens[-1][0] != ".":
                tokens.append((".", [origin[m.start()]]))
            continue
        span = range(m.start(), m.end())
        if not _JOINERS.isdisjoint(word):
            tokens.append(
                (
                    "".join(c for c in word if c not in _JOINERS),
                    [origin[k] for k in span if chars[k] not in _JOINERS],
                )
            )
        else:
            tokens.append((word, list(origin[m.start() : m.end()])))
    return tokens


def _words(text: View, undisguise: bool) -> tuple[View, View, bool]:
    """The words and compact views of ``text`` (leetspeak undone, single letters in runs of 3+
    joined), and whether undoing changed anything."""
    changed = False
    out: list[tuple[str, list[int]]] = []
    for word, where in _tokens(text, undisguise):
        if undisguise and not _LEET_CHARS.isdisjoint(word) and word.lower() != word.upper():
            word = word.translate(_LEET)  # a leet character in a word that has letters
            changed = changed or len(word) > 1
        elif not word.strip("@$"):
            continue  # a lone "@" or "$"
        out.append((word, where))
    chars: list[str] = []
    origin: list[int] = []
    compact: list[str] = []
    compact_origin: list[int] = []
    i = 0
    while i < len(out):
        j = i
        while undisguise and j < len(out) and len(out[j][0]) == 1 and out[j][0].isalpha():
            j += 1
        if j - i >= 3:  # "i g n o r e": a spelled-out word
            word, where = "".join(w for w, _ in out[i:j]), [p for _, ps in out[i:j] for p in ps]
            changed = True
        else:
            word, where = out[i]
            j = i + 1
        if chars:
            chars.append(" ")
            origin.append(where[0])
        chars.append(word)
        origin.extend(where)
        if word != ".":
            compact.append(word)
            compact_origin.extend(where)
        i = j
    words = View("".join(chars), tuple(origin))
    return words, View("".join(compact), tuple(compact_origin)), changed
