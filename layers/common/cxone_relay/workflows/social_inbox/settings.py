"""Settings of the inbox-pull function: which conversations to pull, how far back, and the
classification rules (keyword lists per language, sentiment thresholds), each overridable by its
environment variable."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from cxone_relay.platform.settings import CommaList, CxoneSettings, HttpUrl, JsonList
from cxone_relay.workflows.social_inbox.rules import (
    DEFAULT_HIGH_BELOW,
    DEFAULT_MEDIUM_BELOW,
    DEFAULT_URGENT_KEYWORDS,
)

DEFAULT_CHANNELS = ("FACEBOOK", "TWITTER", "INSTAGRAM", "WHATSAPP")


class InboxPullSettings(CxoneSettings):
    inbox_channels: Annotated[list[str], CommaList] = Field(
        default_factory=lambda: list(DEFAULT_CHANNELS), min_length=1
    )
    # Never reach back further than this; a first run starts here.
    inbox_retention_days: int = Field(default=90, ge=1, le=3650)
    # Contacts updated in the last seconds wait for the next run: the listing may not show them yet.
    inbox_settle_seconds: int = Field(default=60, ge=0, le=3600)
    # What a page needs (listing, messages, tickets, checkpoint): no page starts with less left.
    inbox_page_seconds: float = Field(default=15.0, gt=0, le=300)
    # Optional: left empty, conversations are classified and audited but no ticket is upserted.
    ticketing_base_url: HttpUrl | None = None
    ticketing_api_key_secret_arn: str | None = None
    ticket_chunk_size: int = Field(default=50, ge=1, le=50)
    inbox_languages: Annotated[list[str], CommaList] = Field(
        default_factory=lambda: ["en", "es", "fr", "pt", "de"], min_length=1
    )
    default_language: str = "en"
    language_min_letters: int = Field(default=12, ge=0)
    language_min_confidence: float = Field(default=0.6, ge=0, le=1)
    # JSON object: language -> keywords (words or phrases); other languages use the default's.
    urgent_keywords: Annotated[dict[str, list[str]], JsonList] = Field(
        default_factory=lambda: {language: list(words) for language, words in DEFAULT_URGENT_KEYWORDS.items()}
    )
    high_priority_sentiment_below: float = Field(default=DEFAULT_HIGH_BELOW, ge=-1, le=1)
    medium_priority_sentiment_below: float = Field(default=DEFAULT_MEDIUM_BELOW, ge=-1, le=1)
    shouting_raises_priority: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> InboxPullSettings:
        if self.default_language not in self.inbox_languages:
            raise ValueError(f"DEFAULT_LANGUAGE {self.default_language!r} must be one of INBOX_LANGUAGES")
        if self.high_priority_sentiment_below > self.medium_priority_sentiment_below:
            raise ValueError(
                "HIGH_PRIORITY_SENTIMENT_BELOW must not be above MEDIUM_PRIORITY_SENTIMENT_BELOW"
            )
        return self
