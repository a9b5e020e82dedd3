"""Settings of the inbound SMS functions: keyword lists and spam phrases are shared by the API
function (which must recognise keywords before any rule) and the consumer (which acts on them)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from cxone_relay.platform.settings import (
    CommaList,
    ConsumerSettings,
    CoreSettings,
    CxoneSettings,
    EnvModel,
    HttpUrl,
    JsonList,
)
from cxone_relay.workflows.inbound_sms.keywords import (
    DEFAULT_HELP_WORDS,
    DEFAULT_OPT_IN_WORDS,
    DEFAULT_OPT_OUT_EXACT_WORDS,
    DEFAULT_OPT_OUT_FIRST_WORDS,
    KeywordRules,
)
from cxone_relay.workflows.inbound_sms.moderation import DEFAULT_SPAM_PHRASES, SpamRules
from cxone_relay.workflows.inbound_sms.routing import DEFAULT_ROUTING_RULES

WordList = Annotated[list[str], CommaList]


class InboundRules(EnvModel):
    opt_out_first_words: WordList = Field(
        default_factory=lambda: list(DEFAULT_OPT_OUT_FIRST_WORDS), min_length=1
    )
    opt_out_exact_words: WordList = Field(default_factory=lambda: list(DEFAULT_OPT_OUT_EXACT_WORDS))
    opt_in_words: WordList = Field(default_factory=lambda: list(DEFAULT_OPT_IN_WORDS), min_length=1)
    help_words: WordList = Field(default_factory=lambda: list(DEFAULT_HELP_WORDS), min_length=1)
    # JSON list: phrases may contain commas.
    spam_phrases: Annotated[list[str], JsonList] = Field(default_factory=lambda: list(DEFAULT_SPAM_PHRASES))

    def keyword_rules(self) -> KeywordRules:
        return KeywordRules.from_lists(
            self.opt_out_first_words, self.opt_out_exact_words, self.opt_in_words, self.help_words
        )

    def spam_rules(self) -> SpamRules:
        return SpamRules(self.spam_phrases)


class InboundApiSettings(CoreSettings, InboundRules):
    inbound_queue_url: str
    # Older messages are refused: they would reorder consent history and reach agents too late.
    max_message_age_seconds: int = Field(default=7 * 86400, ge=60)


class InboundConsumerSettings(CxoneSettings, ConsumerSettings, InboundRules):
    opt_out_queue_url: str
    # Optional: left empty, no ticket is upserted and no key is needed.
    ticketing_base_url: HttpUrl | None = None
    ticketing_api_key_secret_arn: str | None = None
    ticket_chunk_size: int = Field(default=50, ge=1, le=100)
    inbound_languages: Annotated[list[str], CommaList] = Field(
        default_factory=lambda: ["en", "es", "fr", "pt", "de"], min_length=1
    )
    default_language: str = "en"
    language_min_letters: int = Field(default=12, ge=0)
    language_min_confidence: float = Field(default=0.6, ge=0, le=1)
    routing_rules: Annotated[dict[str, list[str]], JsonList] = Field(
        default_factory=lambda: {name: list(words) for name, words in DEFAULT_ROUTING_RULES.items()}
    )
    routing_queues: Annotated[dict[str, str], JsonList] = Field(default_factory=dict)
    help_text: str = "Reply STOP to opt out, START to opt back in. Msg&data rates may apply."
    opt_out_reply: str = "You are unsubscribed and will get no more messages. Reply START to resubscribe."
    opt_in_reply: str = "You are subscribed again. Reply STOP to unsubscribe, HELP for help."
    idempotency_ttl_seconds: int = Field(default=86400, ge=60)

    @model_validator(mode="after")
    def _default_language_is_configured(self) -> InboundConsumerSettings:
        if self.default_language not in self.inbound_languages:
            raise ValueError(f"DEFAULT_LANGUAGE {self.default_language!r} must be one of INBOUND_LANGUAGES")
        return self
