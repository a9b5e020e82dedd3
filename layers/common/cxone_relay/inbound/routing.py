"""Routing: keywords choose a category, language and category together choose a CXone queue."""

from __future__ import annotations

from dataclasses import dataclass

from cxone_relay.text import fold, words

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
