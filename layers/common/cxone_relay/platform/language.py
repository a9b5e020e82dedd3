"""Language detection among the configured languages, with lingua (models ship in its wheel).

lingua is imported here, inside the detector, and only functions that detect language carry the
layer that holds it, so API handlers never pay its import or its ~100 MB of models.
Short or low-confidence texts fall back to the default language: a wrong guess would send a
customer to an agent who cannot read them, the default queue at least has a fallback process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from cxone_relay.platform.text import strip_accents


@dataclass(frozen=True)
class LanguageGuess:
    language: str
    confidence: float
    fell_back: bool


class LanguageDetector:
    def __init__(
        self,
        languages: list[str],
        default_language: str,
        min_letters: int = 12,
        min_confidence: float = 0.6,
    ) -> None:
        if default_language not in languages:
            raise ValueError(f"default language {default_language!r} is not among {languages}")
        self.languages = [code.lower() for code in languages]
        self.default_language = default_language.lower()
        self.min_letters = min_letters
        self.min_confidence = min_confidence
        self._detector: Any = None
        self._lock = threading.Lock()

    def _lingua(self) -> Any:
        with self._lock:
            if self._detector is None:
                from lingua import IsoCode639_1, Language, LanguageDetectorBuilder  # noqa: PLC0415

                languages = [
                    Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper()))
                    for code in self.languages
                ]
                self._detector = LanguageDetectorBuilder.from_languages(*languages).build()
            return self._detector

    def detect(self, text: str) -> LanguageGuess:
        letters = sum(char.isalpha() for char in strip_accents(text))
        if letters < self.min_letters or len(self.languages) == 1:
            return LanguageGuess(self.default_language, 0.0, fell_back=True)
        values = self._lingua().compute_language_confidence_values(text)
        if not values:
            return LanguageGuess(self.default_language, 0.0, fell_back=True)
        best = values[0]
        code = best.language.iso_code_639_1.name.lower()
        if best.value < self.min_confidence:
            return LanguageGuess(self.default_language, float(best.value), fell_back=True)
        return LanguageGuess(code, float(best.value), fell_back=False)
