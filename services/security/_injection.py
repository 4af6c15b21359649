"""Prompt-injection scoring: weighted signals over the folded views of a text, matched with RE2.

A single phrase ("system prompt", "pretend to be", "developer mode") is common in benign
requests, so no weak signal decides alone: each matched signal adds its weight once, benign
context (a device, a course) subtracts a little, and the text is an injection when the
score reaches `THRESHOLD`. Strong signals (an override verb aimed at instructions, chat
template tokens, "you are now DAN") weigh more than the largest discount, so no benign
wording can talk them down. Vocabularies cover English, French, Spanish, German, Italian
and Portuguese (diacritics are folded away before matching, see `_textnorm`).

Every pattern runs on RE2 (linear time in the text, whatever it holds). The weights were
tuned on the ``tune`` split of ``tests/data/prompt_corpus.jsonl`` only; the ``holdout``
split measures them (see the corpus test and ``make bench``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import re2  # google-re2 ships no type stubs (mypy: ignore_missing_imports)

from services.security._injection_vocab import (
    HIDDEN,
    LIMITS,
    MODE,
    NOW_YOU_ARE,
    PRIOR,
    REVEAL,
    STRONG_VERB,
    TARGET,
    UNBOUND,
    VERB,
    alt,
)
from services.security._textnorm import Folded

__all__ = ["THRESHOLD", "InjectionScorer", "Score", "Signal"]

THRESHOLD = 1.0
STRONG = 1.5  # more than THRESHOLD + the largest benign discount
_MAX_DISCOUNT = 0.4
# Texts up to this long cannot exhaust a set's DFA memory (one state per position at most).
_SET_TRUSTED_CHARS = 2048


_W = r"(?: [a-z0-9]+)"  # one more word (views hold lowercase words separated by single spaces)


@dataclass(frozen=True)
class Signal:
    """A weighted piece of evidence: ``pattern`` matched (RE2) on the ``view`` named."""

    name: str
    weight: float
    pattern: str
    view: str = "words"  # "words", "compact" or "text" (see `_textnorm.Folded`)
    negatable: bool = False
    """A match right after "don't", "do not", "never" ("don't forget the instructions") does not count."""


# What may follow "ignore the above": the end, a sentence break, or a word that is not a new object.
_AFTER_PRIOR = (
    r"(?:$| \.| (?:and|then|now|text|messages?|content|conversation|part|stuff|input|lines?|said|told"
    r"|you|i|et|y|und|e)\b)"
)
_YOU = "(?:your|ton|votre|tes|vos|tu|tus|su|sus|dein|deine|deinen|ihr|ihre)"
_OWN = "(?:instructions|rules|instrucciones|reglas|consignes|anweisungen|regeln)"
_SAFETY = "(?:safety|content|security|moderation|ethical|ethics|securite|seguridad|sicherheits)"
_CHECKS = (
    "(?:filters?|guidelines|guardrails|restrictions|policies|policy|rules|checks|protocols|measures"
    "|filtres?|filtros?|filter|regeln|richtlinien)"
)
_OFF = alt("""
    disable, turn off, remove, bypass, circumvent, evade, deactivate, switch off, get around, lift,
    desactive, desactiva, deaktiviere, umgehe
""")
_ON = alt("""
    enable, activate, enter, switch to, turn on, unlock, engage, you are in, you re in, now in,
    activez, active, activa, aktiviere
""")
_PRETEND = alt("""
    pretend you are, pretend you re, pretend to be, pretend that you, roleplay as, role play as,
    imagine you are, from now on you, fais semblant, haz como si, finge que, finge ser,
    tu es maintenant, ahora eres, du bist jetzt, stell dir vor du bist, a partir de maintenant,
    a partir de ahora, von nun an, ab jetzt
""")
_AS = "(?:act|behave|respond|answer|pretend|roleplay|role play|play the role of|speak)"
_ANSWER = "(?:answer|respond|reply|speak|talk|write|act|behave|operate|repond|responde|antworte)s?"
_WITHOUT = "(?:without|with no|free of|free from|sans|sin|ohne)"
_TEST = (
    r"\b(?:text|message|messages|instructions?|prompt|everything|conversation|request|task|that|this)"
    rf"{_W}{{0,2}} (?:above|before|so far|earlier|previously)?{_W}{{0,1}} ?(?:was|were|is) "
    r"(?:just |only |merely |all )?(?:a |an )?(?:test|joke|mistake|drill|fake|decoy|distraction)"
)
_DEVICE = alt("""
    android, iphone, ipad, phone, pixel, samsung, chrome, firefox, browser, windows, macos, xcode,
    bios, router, console, vs code, ide
""")
_TEACHING = alt("""
    workshop, course, tutorial, lecture, syllabus, research paper, conference, essay, article,
    blog post, survey, slides, defend against, detect, detection, classifier, taxonomy,
    examples? of (?:prompt )?injection, what is a
""")

SIGNALS: tuple[Signal, ...] = (
    # An override verb aimed at instructions, within a few words ("ignore all the previous rules").
    Signal("override", STRONG, rf"\b{VERB}{_W}{{0,4}} {TARGET}\b", negatable=True),
    Signal("override_prior", STRONG, rf"\b{STRONG_VERB}{_W}{{0,3}} {PRIOR}{_AFTER_PRIOR}", negatable=True),
    Signal(
        "override_all", 1.0, rf"\b{VERB} (?:everything|all of (?:it|that|this)|all that|tout|todo|alles)\b"
    ),
    # Words split inside ("ig nore", "p a y n o attention"): the compact view, qualifier required.
    Signal(
        "override_compact",
        STRONG,
        r"(?:ignore|disregard|forget|bypass|override|paynoattentionto)(?:all|any|the|your|my|of)*"
        r"(?:(?:previous|prior|above|earlier|preceding|system|initial|safety)"
        r"(?:instructions?|prompts?|rules|directions|guidelines|directives)"
        r"|(?:instructions?|prompts?|rules|directions|guidelines|directives)(?:above|before))",
        "compact",
    ),
    Signal(
        "reveal_compact",
        STRONG,
        r"(?:reveal|show|print|repeat|tell|dump|leak)(?:me|us)?(?:your|the)"
        r"(?:hidden|system|initial|secret|original)(?:instructions|prompt)",
        "compact",
    ),
    Signal("was_a_test", STRONG, _TEST),
    Signal(
        "new_instructions",
        STRONG,
        r"\b(?:new|updated|real|actual|true) (?:instructions?|rules|orders|task)(?: (?:are|is))?\s*:",
        "text",
    ),
    Signal(
        "new_instructions_words",
        0.6,
        r"\b(?:your (?:new|real|actual|true) (?:instructions|task|orders|rules|goal)"
        r"|nouvelles? (?:instructions|consignes)|nuevas instrucciones|neuen? anweisungen)\b",
    ),
    Signal(
        "template_token", STRONG, r"<\|? ?(?:im_start|im_end|system|endoftext|eot_id|start_header_id)", "text"
    ),
    Signal(
        "template_tag",
        STRONG,
        r"\[/?inst\]|</? ?system ?>|#{2,} ?(?:system|instruction)|\bsystem override\b",
        "text",
    ),
    # Asking for the hidden prompt: the verb and the object must both be there.
    Signal("reveal", STRONG, rf"\b{REVEAL}{_W}{{0,4}} {HIDDEN}\b"),
    Signal(
        "reveal_given",
        STRONG,
        rf"\b{REVEAL}{_W}{{0,3}} (?:rules|instructions|prompt|guidelines)(?: that)? you "
        r"(?:were|have been|got) (?:given|told|programmed)",
    ),
    Signal("reveal_own", 1.0, rf"\b{REVEAL}{_W}{{0,2}} {_YOU} {_OWN}\b"),
    Signal("hidden_prompt", 0.4, rf"\b{HIDDEN}\b"),
    Signal(
        "your_prompt",
        0.6,
        rf"\b{_YOU} (?:system prompt|prompt systeme|prompt del sistema|systemprompt|initial prompt"
        r"|hidden prompt|system message)\b",
    ),
    Signal(
        "verbatim",
        0.4,
        r"\b(?:verbatim|word for word|mot pour mot|palabra por palabra|wortwortlich|wort fur wort)\b",
    ),
    # Role play and jailbreaks.
    Signal("you_are_now", STRONG, rf"\b(?:you are|you re|youre|you will be) now{_W}{{0,2}} {UNBOUND}\b"),
    Signal("now_unbound", 1.0, rf"\b{NOW_YOU_ARE}{_W}{{0,2}} {UNBOUND}"),
    Signal("dan", STRONG, r"\bdo anything now\b|\bdan mode\b|\bstay in character as dan\b"),
    Signal("act_as_unbound", STRONG, rf"\b{_AS}(?: as| like| to be| you are)?{_W}{{0,2}} {UNBOUND}\b"),
    Signal("pretend", 0.5, rf"\b{_PRETEND}\b"),
    Signal(
        "mode_on",
        1.0,
        rf"\b{_ON}{_W}{{0,1}} {MODE} mode\b|\b{MODE} mode (?:is )?(?:enabled|activated|on|engaged)\b"
        r"|\bmode (?:developpeur|dieu) (?:active|actif)|\bmodo (?:desarrollador|dios) (?:activado|activo)"
        r"|\bentwicklermodus (?:aktiviert|an)\b",
    ),
    Signal(
        "mode_mention",
        0.3,
        rf"\b{MODE} mode\b|\bmode developpeur\b|\bmodo desarrollador\b|\bentwicklermodus\b",
    ),
    Signal("jailbreak", 0.6, r"\bjail ?break|\bjailbroken\b"),
    Signal("jailbreak_prompt", 1.0, r"\bjail ?break (?:prompt|mode|attempt|yourself)\b"),
    Signal(
        "unbound_answer",
        1.0,
        rf"\b{_ANSWER}{_W}{{0,3}} {_WITHOUT} (?:any |all |aucune |ninguna |jegliche )?{LIMITS}\b",
    ),
    Signal(
        "no_limits",
        0.5,
        rf"\b(?:without|with no|no|free of|free from|zero|sans|sin|ohne) (?:any |all )?{LIMITS}\b"
        r"|\b(?:sans|sin) (?:restrictions?|restricciones|filtros?|limites?|censura|censure)\b"
        r"|\bohne (?:einschrankungen|zensur|regeln)\b",
    ),
    Signal("disable_safety", STRONG, rf"\b{_OFF}{_W}{{0,3}} {_SAFETY} ?{_CHECKS}\b"),
    Signal(
        "secrets",
        0.5,
        r"\b(?:api keys?|passwords?|credentials|secret keys?|access tokens?|private keys?|activation keys?"
        r"|license keys?"
        r"|mots de passe|contrasenas|passworter|zugangsdaten)\b",
    ),
    Signal(
        "obey",
        0.5,
        r"\b(?:obey me|you must obey|follow my instructions only|only follow my"
        r"|i am your (?:developer|creator|admin|administrator|owner)"
        r"|i am the (?:developer|admin|administrator|system))\b",
    ),
    Signal("grandma", 0.6, r"\b(?:late|dead|deceased|dying) (?:grandmother|grandma|granny|grandpa)"),
    Signal("instead", 0.4, r"\binstead\b(?: say| print| output| write| respond| answer| reply)|\band say\b"),
    # Benign context: a device, a course, a report. Only discounts; never below a strong signal.
    Signal("device", -0.4, rf"\b{_DEVICE}\b"),
    Signal("teaching", -0.4, rf"\b{_TEACHING}\b"),
)


@dataclass(frozen=True)
class Score:
    """The signals that matched, their summed weight, and where the first positive one starts."""

    total: float
    signals: tuple[str, ...]
    position: int

    @property
    def flagged(self) -> bool:
        return self.total >= THRESHOLD


def _options(max_mem: int = 32 << 20) -> Any:
    opts = re2.Options()
    opts.max_mem = max_mem
    opts.log_errors = False
    opts.case_sensitive = False  # the views are lower-case already; extra patterns may not be
    return opts


class InjectionScorer:
    """Compiled signals (built-in plus ``extra`` regexes, each a strong signal on the text view)."""

    def __init__(self, extra: Sequence[str] = ()) -> None:
        signals = list(SIGNALS) + [Signal(f"extra_{i}", STRONG, p, "text") for i, p in enumerate(extra)]
        self._compiled = [(s, re2.compile(s.pattern, _options())) for s in signals]
        # One RE2 set per view answers "which signals match" in a single pass over the text;
        # only those are then searched one by one (for negation and positions).
        self._sets: dict[str, tuple[Any, list[int]]] = {}
        for view in ("text", "words", "compact"):
            members = [i for i, s in enumerate(signals) if s.view == view]
            matcher = re2.Set.SearchSet(_options(64 << 20))
            for i in members:
                matcher.Add(signals[i].pattern)
            matcher.Compile()
            self._sets[view] = (matcher, members)

    def score(self, folded: Folded, *, exhaustive: bool = False) -> Score:
        """Score the views of one text. Linear in its length (RE2).

        ``exhaustive`` searches every signal instead of asking the sets first (same answer; tests).
        """
        hits: list[int] = []
        for view, (matcher, members) in self._sets.items():
            text = getattr(folded, view).text
            found = matcher.Match(text)
            if exhaustive or (found is None and len(text) > _SET_TRUSTED_CHARS):
                # A set match that runs out of DFA memory reports "no match", indistinguishable
                # from a real miss; past a size that cannot happen, search each signal instead.
                hits += members
            else:
                hits += (members[k] for k in found or ())
        total = 0.0
        discount = 0.0
        names: list[str] = []
        position = -1
        for index in sorted(hits):
            signal, regex = self._compiled[index]
            view = getattr(folded, signal.view)
            m = _first(regex, view.text, signal.negatable)
            if m is None:
                continue
            if signal.weight < 0:
                discount = max(discount + signal.weight, -_MAX_DISCOUNT)
                continue
            total += signal.weight
            names.append(signal.name)
            where = view.position(m.start())
            position = where if position < 0 else min(position, where)
        if names:
            total += discount
        return Score(round(total, 3), tuple(names), position)


_NEGATION = re2.compile(r"(?:\bdon t|\bdont|\bdo not|\bnever|\bnot|\bn)\s?$", _options())
_MAX_NEGATED = 8  # matches skipped as negated before giving up (bounds the work per signal)


def _first(regex: Any, text: str, negatable: bool) -> Any:
    """The first match of ``regex`` in ``text``; for a negatable signal, the first not negated."""
    if not negatable:
        return regex.search(text)
    for k, m in enumerate(regex.finditer(text)):
        if k >= _MAX_NEGATED:
            return None
        if _NEGATION.search(text[max(0, m.start() - 8) : m.start()]) is None:
            return m
    return None


def check_pattern(pattern: str) -> str | None:
    """Why ``pattern`` cannot be an extra injection signal (RE2 cannot run it), or None."""
    try:
        re2.compile(pattern, _options())
    except re2.error as exc:
        return f"not an RE2 regular expression: {str(exc)[:120]}"
    return None
