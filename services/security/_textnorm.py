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
    text = View("".join(chars), tuple(origin))
    words, split_joined = _words(text, undisguise)
    compact_idx = [j for j, c in enumerate(words.text) if c not in " ."]
    compact = View("".join(words.text[j] for j in compact_idx), tuple(words.origin[j] for j in compact_idx))
    return Folded(text, words, compact, changed or split_joined)


def _tokens(text: View, undisguise: bool) -> list[tuple[str, list[int]]]:
    """Words of ``text``, and "." for each run of sentence punctuation between them.

    Undisguising, a joiner (``-`` ``.`` ``_`` ``*``) between two word characters joins them:
    ``i-g-n-o-r-e``, ``I.G.N.O.R.E`` and ``instru-ctions`` become one word.
    """
    tokens: list[tuple[str, list[int]]] = []
    cur: list[str] = []
    pos: list[int] = []
    chars, origin = text.text, text.origin
    n = len(chars)
    for k in range(n):
        c = chars[k]
        if _is_word_char(c):
            cur.append(c)
            pos.append(origin[k])
            continue
        if undisguise and c in _JOINERS and cur and k + 1 < n and _is_word_char(chars[k + 1]):
            continue  # inside a word
        if cur:
            tokens.append(("".join(cur), pos))
            cur, pos = [], []
        if c in _SENTENCE and tokens and tokens[-1][0] != ".":
            tokens.append((".", [origin[k]]))
    if cur:
        tokens.append(("".join(cur), pos))
    return tokens


def _words(text: View, undisguise: bool) -> tuple[View, bool]:
    """Letter/digit words of ``text`` (leetspeak undone), single letters in runs of 3+ joined."""
    changed = False
    out: list[tuple[str, list[int]]] = []
    for word, where in _tokens(text, undisguise):
        if undisguise and any(c in _LEET_CHARS for c in word) and any(c.isalpha() for c in word):
            word = word.translate(_LEET)
            changed = changed or len(word) > 1
        elif not any(c.isalnum() for c in word) and word != ".":
            continue  # a lone "@" or "$"
        out.append((word, where))
    joined: list[tuple[str, list[int]]] = []
    i = 0
    while i < len(out):
        j = i
        while j < len(out) and len(out[j][0]) == 1 and out[j][0].isalpha():
            j += 1
        if undisguise and j - i >= 3:  # "i g n o r e": a spelled-out word
            joined.append(("".join(w for w, _ in out[i:j]), [p for _, ps in out[i:j] for p in ps]))
            changed = True
            i = j
        else:
            joined.append(out[i])
            i += 1
    chars: list[str] = []
    origin: list[int] = []
    for k, (word, where) in enumerate(joined):
        if k:
            chars.append(" ")
            origin.append(where[0])
        chars.append(word)
        origin.extend(where)
    return View("".join(chars), tuple(origin)), changed
