"""Carrier keywords (STOP / START / HELP), recognised before any other rule.

Opt-out words split in two lists on purpose: unambiguous words opt out when they start the
message ("STOP please"), while words that also begin ordinary sentences ("Cancel my order")
opt out only when they are the whole message.
"""

from __future__ import annotations

from enum import StrEnum

from cxone_relay.platform.text import fold, words

DEFAULT_OPT_OUT_FIRST_WORDS = (
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "OPTOUT",
    "OPT-OUT",
    "REVOKE",
    "ARRET",
    "ARRÊT",
    "BAJA",
)
DEFAULT_OPT_OUT_EXACT_WORDS = ("CANCEL", "END", "QUIT", "REMOVE", "TD", "ALTO")
DEFAULT_OPT_IN_WORDS = ("START", "UNSTOP", "YES")
DEFAULT_HELP_WORDS = ("HELP", "INFO")


class KeywordAction(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


class KeywordRules:
    """The configured keyword lists, folded once (a plain class rather than a dataclass so the
    mutation tester, which skips decorated classes, reaches `classify`)."""

    __slots__ = ("help_words", "opt_in_words", "opt_out_exact_words", "opt_out_first_words")

    def __init__(
        self,
        opt_out_first_words: frozenset[str],
        opt_out_exact_words: frozenset[str],
        opt_in_words: frozenset[str],
        help_words: frozenset[str],
    ) -> None:
        self.opt_out_first_words = opt_out_first_words
        self.opt_out_exact_words = opt_out_exact_words
        self.opt_in_words = opt_in_words
        self.help_words = help_words

    @classmethod
    def from_lists(
        cls,
        opt_out_first_words: list[str] | tuple[str, ...] = DEFAULT_OPT_OUT_FIRST_WORDS,
        opt_out_exact_words: list[str] | tuple[str, ...] = DEFAULT_OPT_OUT_EXACT_WORDS,
        opt_in_words: list[str] | tuple[str, ...] = DEFAULT_OPT_IN_WORDS,
        help_words: list[str] | tuple[str, ...] = DEFAULT_HELP_WORDS,
    ) -> KeywordRules:
        return cls(
            frozenset(fold(word) for word in opt_out_first_words),
            frozenset(fold(word) for word in opt_out_exact_words),
            frozenset(fold(word) for word in opt_in_words),
            frozenset(fold(word) for word in help_words),
        )

    def classify(self, body: str) -> KeywordAction | None:
        folded = fold(body)
        tokens = words(body)
        if not tokens:
            return None
        if tokens[0] in self.opt_out_first_words or folded in self.opt_out_exact_words:
            return KeywordAction.OPT_OUT
        if folded in self.opt_in_words:
            return KeywordAction.OPT_IN
        if folded in self.help_words:
            return KeywordAction.HELP
        return None
