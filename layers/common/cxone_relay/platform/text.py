"""Text folding for rule matching: what a customer types and what an operator configures must
compare equal regardless of case, accents and punctuation."""

from __future__ import annotations

import re
import unicodedata

# Hyphens and apostrophes join a word ("OPT-OUT" is "optout", "don't" is "dont"); any other
# punctuation separates words ("STOP,please" is "stop please").
_JOINERS = re.compile(r"[-'\u2019\u2010\u2011]")
_SEPARATORS = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def fold(text: str) -> str:
    """Case-folded, accent-free, punctuation-free, single-spaced."""
    folded = strip_accents(text.casefold())
    folded = _JOINERS.sub("", folded)
    folded = _SEPARATORS.sub(" ", folded)
    return _SPACES.sub(" ", folded).strip()


def words(text: str) -> list[str]:
    folded = fold(text)
    return folded.split(" ") if folded else []
