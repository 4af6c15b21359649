"""The prompt-injection corpus (``prompt_corpus.jsonl``) and the detector's rates on it.

Shared by the corpus test and ``make bench`` so both report the same figures.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from services.security import PromptValidator

__all__ = ["CORPUS", "Entry", "Rates", "load", "rates"]

CORPUS = Path(__file__).with_name("prompt_corpus.jsonl")
_DETECTED = {"PROMPT_INJECTION", "OBFUSCATED_INJECTION", "ENCODED_INJECTION"}


@dataclass(frozen=True)
class Entry:
    text: str
    label: str
    kind: str
    split: str


@dataclass
class Rates:
    """Missed injections and flagged benign prompts over a set of entries."""

    injections: int = 0
    benign: int = 0
    missed: list[Entry] = field(default_factory=list)
    flagged: list[Entry] = field(default_factory=list)

    @property
    def false_negative_rate(self) -> float:
        return len(self.missed) / self.injections if self.injections else 0.0

    @property
    def false_positive_rate(self) -> float:
        return len(self.flagged) / self.benign if self.benign else 0.0

    def summary(self, name: str) -> str:
        return (
            f"{name}: {self.injections + self.benign} prompts; missed {len(self.missed)}/{self.injections} "
            f"injections ({self.false_negative_rate:.1%}), flagged {len(self.flagged)}/{self.benign} "
            f"benign ({self.false_positive_rate:.1%})"
        )


def load(path: Path = CORPUS) -> list[Entry]:
    return [Entry(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def detected(validator: PromptValidator, text: str) -> bool:
    return any(f.code in _DETECTED for f in validator.validate("prompt", text))


def rates(entries: Iterable[Entry], validator: PromptValidator | None = None) -> Rates:
    validator = validator or PromptValidator()
    out = Rates()
    for e in entries:
        hit = detected(validator, e.text)
        if e.label == "injection":
            out.injections += 1
            if not hit:
                out.missed.append(e)
        else:
            out.benign += 1
            if hit:
                out.flagged.append(e)
    return out
