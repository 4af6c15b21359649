"""Word lists of the injection signals (English, French, Spanish, Portuguese, Italian, German).

Entries are folded like the text they match (`_textnorm`: lower case, no diacritics,
punctuation replaced by a space: "don't" is "don t", "précédentes" is "precedentes") and
may hold RE2 syntax (``instructions?``). Each list becomes one alternation.
"""

from __future__ import annotations

__all__ = [
    "HIDDEN",
    "LIMITS",
    "MODE",
    "NOW_YOU_ARE",
    "PRIOR",
    "REVEAL",
    "STRONG_VERB",
    "TARGET",
    "UNBOUND",
    "VERB",
    "alt",
]


def alt(block: str) -> str:
    """An RE2 alternation of the comma-separated entries of ``block``."""
    return "(?:" + "|".join(e.strip() for e in block.replace("\n", ",").split(",") if e.strip()) + ")"


# Verbs that mean "do not follow" even without an object naming instructions ("ignore the above").
STRONG_VERB = alt("""
    ignore, ignores, ignoring, disregard, disregarding, forget, override, overrule, pay no attention to,
    pay no heed to, stop following, do not follow, don t follow, dont follow, no longer follow,
    do not obey, stop obeying, never mind, nevermind,
    ignorez, ignorer, oublie, oubliez, oublier, ne tiens pas compte, ne tenez pas compte,
    ne tiens plus compte, ne tenez plus compte, fais abstraction, faites abstraction, passe outre,
    passez outre, outrepasse, outrepassez,
    ignora, ignoren, ignorar, olvida, olvide, olviden, olvidar, no hagas caso, haz caso omiso, omite,
    omita, descarta, descarte, pasa por alto, esqueca, esquece, desconsidere, desconsidera,
    dimentica, dimenticate, non tenere conto,
    ignoriere, ignorieren, ignorier, vergiss, vergesst, vergessen sie, missachte, missachten,
    uberspringe, ueberspringe, verwirf
""")
# All override verbs, weak ones ("skip", "drop") only count when aimed at instructions.
VERB = alt(
    STRONG_VERB[3:-1]
    + """,
    skip, bypass, discard, abandon, neglect, drop, set aside, throw out, erase, wipe
"""
)
TARGET = alt("""
    instructions?, prompts?, rules, directions, guidelines, directives, commands, orders, constraints,
    restrictions, guardrails, polic(?:y|ies), programming, system message, training, safety, context,
    consignes?, regles, ordres, contraintes, instrucciones, reglas, indicaciones, directrices, ordenes,
    normas, restricciones, instrucoes, regras, istruzioni, regole, anweisungen, anweisung, regeln,
    vorgaben, instruktionen, befehle, richtlinien, einschrankungen, anordnungen, systemprompt
""")
PRIOR = alt("""
    previous, previously, prior, above, earlier, preceding, original, initial, former, old, before,
    so far, until now, given, precedentes?, precedents?, anterieures?, ci dessus, jusqu ici,
    anteriores?, previas?, de arriba, hasta ahora, precedenti, vorherigen?, vorigen?, bisherigen?,
    obigen?, fruheren?, vorangegangenen?
""")
REVEAL = alt("""
    reveal, print, show, repeat, output, leak, dump, display, disclose, recite, spell out, tell me,
    give me, share, what is in, what s in, what are, what were, revele, revelez, montre, montrez,
    affiche, affichez, donne moi, muestra, muestrame, revela, dime, ensename, zeige, zeig mir, gib mir,
    verrate, nenne
""")
HIDDEN = alt("""
    system prompt, system message, initial prompt, hidden prompt, original prompt, secret prompt,
    pre prompt, preprompt, hidden instructions, initial instructions, original instructions,
    secret instructions, system instructions, developer instructions, prompt systeme,
    instructions systeme, instructions initiales, instructions cachees, prompt del sistema,
    instrucciones del sistema, instrucciones ocultas, instrucciones iniciales, systemprompt,
    system anweisungen, systemanweisungen, versteckten anweisungen, anfangsanweisungen
""")
UNBOUND = alt("""
    unrestricted, unfiltered, uncensored, jailbroken, dan, evil, rogue, amoral, unaligned, unlimited,
    without (?:any )?(?:rules|limits|restrictions|filters), free from (?:all )?rules, no longer bound,
    not bound, sans restrictions?, sans filtre, sans limites?, sin restricciones, sin filtros,
    sin limites, ohne einschrankungen, ohne regeln, ohne filter, uneingeschrankt
""")
LIMITS = alt("""
    restrictions, filters?, limitations, limits, censorship, rules, guidelines, boundaries, morals,
    ethics, guardrails, content policy, safety, moderation
""")
MODE = alt("developer, dev, god, admin, debug, sudo, unrestricted, jailbreak, dan, evil")
NOW_YOU_ARE = alt("""
    tu es maintenant, vous etes maintenant, ahora eres, ahora seras, du bist jetzt, du bist nun,
    ora sei, agora voce e
""")
