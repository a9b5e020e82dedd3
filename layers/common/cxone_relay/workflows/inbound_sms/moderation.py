"""Spam and moderation rules: configured phrases, matched case- and accent-insensitively on
whole words, so "FRÉE LOTTERY!!" is caught and "freely" is not."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cxone_relay.platform.text import fold

DEFAULT_SPAM_PHRASES = ("free lottery", "winner notification", "act now", "click here to claim")


@dataclass(frozen=True)
class ModerationVerdict:
    rule: str
    reason: str = "spam"


class SpamRules:
    def __init__(self, phrases: list[str] | tuple[str, ...] = DEFAULT_SPAM_PHRASES) -> None:
        self._rules = [
            (phrase, re.compile(rf"(?<!\w){re.escape(fold(phrase))}(?!\w)"))
            for phrase in phrases
            if fold(phrase)
        ]

    def check(self, body: str) -> ModerationVerdict | None:
        folded = fold(body)
        for phrase, pattern in self._rules:
            if pattern.search(folded):
                return ModerationVerdict(rule=phrase)
        return None
