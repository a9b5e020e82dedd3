"""Routing: keywords choose a category, language and category together choose a CXone queue."""

from __future__ import annotations

from dataclasses import dataclass

from cxone_relay.platform.language import LanguageDetector
from cxone_relay.platform.text import fold, words
from cxone_relay.workflows.inbound_sms.models import Routing

DEFAULT_CATEGORY = "general"
DEFAULT_ROUTING_RULES: dict[str, list[str]] = {
    "billing": ["invoice", "payment", "charge", "refund"],
    "technical": ["error", "bug", "login", "password", "reset"],
}


@dataclass(frozen=True)
class Category:
    name: str
    keywords: tuple[str, ...]


class CategoryRules:
    """Rules are tried in their configured order; the first with a matching word wins. A rule
    keyword matches a word or its plural ("invoices"), and may itself be several words."""

    def __init__(self, rules: dict[str, list[str]]) -> None:
        self._rules = [(name, [fold(keyword) for keyword in keywords]) for name, keywords in rules.items()]

    def categorise(self, body: str) -> Category:
        tokens = words(body)
        token_set = set(tokens) | {token.removesuffix("s") for token in tokens if len(token) > 3}
        folded = f" {fold(body)} "
        for name, keywords in self._rules:
            matched = tuple(
                keyword
                for keyword in keywords
                if keyword in token_set or (" " in keyword and f" {keyword} " in folded)
            )
            if matched:
                return Category(name, matched)
        return Category(DEFAULT_CATEGORY, ())


class QueueRouter:
    """Maps (language, category) to a CXone routing queue id.

    Keys are "language:category" with "*" as a wildcard on either side; the most specific key
    wins, and a message matching none goes to a queue named after its category.
    """

    def __init__(self, queues: dict[str, str]) -> None:
        self._queues = {key.lower(): value for key, value in queues.items()}

    def queue_for(self, language: str, category: str) -> str:
        for key in (f"{language}:{category}", f"{language}:*", f"*:{category}", "*:*"):
            if key in self._queues:
                return self._queues[key]
        return category


class MessageRouter:
    """Language and keyword rules together: one decision per message."""

    def __init__(self, detector: LanguageDetector, categories: CategoryRules, queues: QueueRouter) -> None:
        self._detector = detector
        self._categories = categories
        self._queues = queues

    def route(self, text: str) -> Routing:
        guess = self._detector.detect(text)
        category = self._categories.categorise(text)
        return Routing(
            category=category.name,
            keywords=list(category.keywords),
            language=guess.language,
            language_confidence=round(guess.confidence, 3),
            language_fallback=guess.fell_back,
            queue=self._queues.queue_for(guess.language, category.name),
        )
