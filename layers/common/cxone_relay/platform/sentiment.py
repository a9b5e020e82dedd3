"""Sentiment scoring with VADER's compound score (vaderSentiment, which ships its lexicon in the
wheel: nothing is fetched at run time).

VADER's lexicon is English. It is imported on first use and lives in a layer only the inbox-pull
function carries, so no other function pays for it in its cold start.
"""

from __future__ import annotations

import threading
from typing import Any


class SentimentAnalyzer:
    def __init__(self) -> None:
        self._analyzer: Any = None
        self._lock = threading.Lock()

    def _vader(self) -> Any:
        with self._lock:
            if self._analyzer is None:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # noqa: PLC0415

                self._analyzer = SentimentIntensityAnalyzer()
            return self._analyzer

    def compound(self, text: str) -> float:
        """From -1 (most negative) to 1 (most positive); VADER calls 0.05 and above positive."""
        return float(self._vader().polarity_scores(text)["compound"])
