"""Classification of a conversation: urgent keywords, VADER sentiment, and shouting.

- Urgent keywords are configured per language and matched as whole words or phrases, case- and
  accent-insensitively ("REFUND!" matches refund, "refundable" does not); a language without its
  own list uses the default language's.
- The sentiment score is VADER's compound score, for English only: its lexicon is English, and a
  score it cannot give is better absent than wrong.
- HIGH when a keyword matches or the score is below `high_below` (seed -0.4); MEDIUM when the
  score is below `medium_below` (seed 0); otherwise LOW.
- Shouting (mostly capitals, or a run of three or more "!") raises the priority one level, unless
  VADER scores the text positive: "I LOVE IT!!!" is enthusiasm, not an emergency.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from cxone_relay.platform.language import LanguageGuess
from cxone_relay.platform.text import fold
from cxone_relay.workflows.social_inbox.models import Classification, Priority

DEFAULT_URGENT_KEYWORDS: dict[str, list[str]] = {
    "en": [
        "urgent",
        "immediately",
        "cancel",
        "refund",
        "not working",
        "broken",
        "complaint",
        "escalate",
        "legal",
        "sue",
    ],
    "es": [
        "urgente",
        "inmediatamente",
        "cancelar",
        "reembolso",
        "no funciona",
        "roto",
        "queja",
        "reclamación",
        "abogado",
        "demanda",
    ],
    "fr": [
        "urgent",
        "immédiatement",
        "annuler",
        "remboursement",
        "ne fonctionne pas",
        "ne marche pas",
        "cassé",
        "plainte",
        "réclamation",
        "avocat",
    ],
    "pt": [
        "urgente",
        "imediatamente",
        "cancelar",
        "reembolso",
        "não funciona",
        "quebrado",
        "reclamação",
        "advogado",
        "processar",
    ],
    "de": [
        "dringend",
        "sofort",
        "kündigen",
        "stornieren",
        "erstattung",
        "rückerstattung",
        "funktioniert nicht",
        "kaputt",
        "beschwerde",
        "anwalt",
    ],
}
DEFAULT_HIGH_BELOW = -0.4
DEFAULT_MEDIUM_BELOW = 0.0
# VADER's own cut-off: a compound score of 0.05 or more is positive.
POSITIVE_FROM = 0.05
SENTIMENT_LANGUAGES = frozenset({"en"})
# Shouting: at least this many letters, this share of them capitals ("OK" is not shouting).
SHOUTING_MIN_LETTERS = 8
SHOUTING_CAPITALS_SHARE = 0.8
EXCLAMATION_RUN = re.compile(r"!{3,}")


class SentimentScorer(Protocol):
    def compound(self, text: str) -> float: ...


class LanguageGuesser(Protocol):
    def detect(self, text: str) -> LanguageGuess: ...


class UrgentKeywords:
    def __init__(self, lists: Mapping[str, Sequence[str]], default_language: str) -> None:
        self._default = default_language.lower()
        self._rules = {
            language.lower(): [
                (keyword, re.compile(rf"(?<!\w){re.escape(fold(keyword))}(?!\w)"))
                for keyword in keywords
                if fold(keyword)
            ]
            for language, keywords in lists.items()
        }

    def find(self, text: str, language: str) -> tuple[str, ...]:
        """The configured keywords the text holds, in configured order."""
        rules = self._rules.get(language.lower())
        if rules is None:
            rules = self._rules.get(self._default, [])
        folded = fold(text)
        return tuple(keyword for keyword, pattern in rules if pattern.search(folded))


def is_shouting(text: str) -> bool:
    if EXCLAMATION_RUN.search(text):
        return True
    # Cased letters only: digits, punctuation and scripts without case say nothing about it.
    letters = [char for char in text if char.isupper() or char.islower()]
    capitals = sum(char.isupper() for char in letters)
    return len(letters) >= SHOUTING_MIN_LETTERS and capitals >= SHOUTING_CAPITALS_SHARE * len(letters)


@dataclass(frozen=True)
class Thresholds:
    high_below: float = DEFAULT_HIGH_BELOW
    medium_below: float = DEFAULT_MEDIUM_BELOW

    def __post_init__(self) -> None:
        if self.high_below > self.medium_below:
            raise ValueError("the HIGH sentiment threshold must not be above the MEDIUM one")

    def priority(self, urgent: bool, score: float | None) -> Priority:
        if urgent or (score is not None and score < self.high_below):
            return Priority.HIGH
        if score is not None and score < self.medium_below:
            return Priority.MEDIUM
        return Priority.LOW


class Classifier:
    def __init__(
        self,
        keywords: UrgentKeywords,
        languages: LanguageGuesser,
        sentiment: SentimentScorer,
        thresholds: Thresholds,
        *,
        shouting_raises: bool = True,
    ) -> None:
        self._keywords = keywords
        self._languages = languages
        self._sentiment = sentiment
        self._thresholds = thresholds
        self._shouting_raises = shouting_raises

    def classify(self, text: str) -> Classification:
        language = self._languages.detect(text).language
        keywords = self._keywords.find(text, language)
        score = round(self._sentiment.compound(text), 4) if language in SENTIMENT_LANGUAGES else None
        priority = self._thresholds.priority(bool(keywords), score)
        shouting = is_shouting(text)
        positive = score is not None and score >= POSITIVE_FROM
        raised = shouting and self._shouting_raises and not positive and priority is not Priority.HIGH
        return Classification(
            priority=priority.raised() if raised else priority,
            keywords=keywords,
            sentiment_score=score,
            language=language,
            shouting=shouting,
            raised_for_shouting=raised,
        )
