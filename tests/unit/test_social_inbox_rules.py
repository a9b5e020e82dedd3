"""Classification of social conversations: labelled examples through the classifier the function
builds (lingua and VADER for real), and the rules' edges with stand-ins for both."""

from __future__ import annotations

import json

import pytest

from cxone_relay.platform.errors import ConfigurationError
from cxone_relay.platform.language import LanguageGuess
from cxone_relay.workflows.social_inbox import wiring
from cxone_relay.workflows.social_inbox.models import Priority
from cxone_relay.workflows.social_inbox.rules import (
    DEFAULT_URGENT_KEYWORDS,
    Classifier,
    Thresholds,
    UrgentKeywords,
    is_shouting,
)
from cxone_relay.workflows.social_inbox.settings import InboxPullSettings

ENVIRONMENT = {
    "AUDIT_TABLE": "audit",
    "STATE_TABLE": "state",
    "IDEMPOTENCY_TABLE": "idem",
    "PII_HASH_KEY_SECRET_ARN": "arn:pii",
    "CXONE_ENVIRONMENTS": json.dumps([{"name": "primary"}]),
    "CXONE_DEFAULT_CREDENTIALS_SECRET_ARN": "arn:cxone",
    "CXONE_TOKEN_PARAMETER_PREFIX": "/cxone-relay/test/cxone-token",
}
HIGH, MEDIUM, LOW = Priority.HIGH, Priority.MEDIUM, Priority.LOW

# (text, priority, language): labelled by hand from the issue's rules.
LABELLED = [
    ("I want a refund", HIGH, "en"),
    ("Please cancel my subscription", HIGH, "en"),
    ("The app is not working since yesterday", HIGH, "en"),
    ("This needs to be fixed immediately", HIGH, "en"),
    ("I will sue you", HIGH, "en"),
    ("I want to file a complaint", HIGH, "en"),
    ("Can you escalate this to a manager", HIGH, "en"),
    ("The app keeps crashing, this is broken", HIGH, "en"),
    ("refund", HIGH, "en"),  # too short to detect a language: the default's list applies
    ("URGENT", HIGH, "en"),  # a keyword, and too short to count as shouting
    ("Your service is a disaster, worst company ever", HIGH, "en"),  # sentiment below -0.4
    ("I am sad about the delay", HIGH, "en"),
    ("The parcel is missing", MEDIUM, "en"),  # sentiment below 0
    ("I lost my password", MEDIUM, "en"),
    ("Slightly annoyed by the wait", MEDIUM, "en"),
    ("Where is my order?", LOW, "en"),
    ("Thanks for the quick answer", LOW, "en"),
    ("Hello there", LOW, "en"),
    ("Is the refundable deposit included?", LOW, "en"),  # whole words: refundable is not refund
    ("Cancellation policy question", LOW, "en"),
    ("This is unbroken", LOW, "en"),
    ("WHERE IS MY ORDER", MEDIUM, "en"),  # shouting raises LOW to MEDIUM
    ("Where is my order!!!", MEDIUM, "en"),
    ("THE PARCEL IS MISSING", HIGH, "en"),  # shouting raises MEDIUM to HIGH
    ("The screen is cracked and the parcel is missing!!!", HIGH, "en"),
    ("I LOVE YOUR SHOP!!!", LOW, "en"),  # positive: enthusiasm, not shouting
    ("Hola, quiero un reembolso de mi pedido", HIGH, "es"),
    ("Mi paquete llegó roto", HIGH, "es"),
    ("Hola, ¿cuándo llega mi pedido? Muchas gracias", LOW, "es"),
    ("MI PEDIDO NO LLEGA NUNCA, ESTOY HARTO", MEDIUM, "es"),  # no score, shouting raises
    ("Bonjour, je veux annuler ma commande", HIGH, "fr"),
    ("Bonjour, merci beaucoup pour votre aide rapide", LOW, "fr"),
    ("Olá, o aplicativo não funciona desde ontem", HIGH, "pt"),
    ("Hallo, ich möchte meinen Vertrag kündigen", HIGH, "de"),
    ("Hallo, wann kommt meine Bestellung an?", LOW, "de"),
]


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return wiring.classifier(InboxPullSettings.from_env(ENVIRONMENT))


def test_there_are_at_least_25_labelled_examples_across_every_priority_and_language():
    assert len(LABELLED) >= 25
    assert {priority for _, priority, _ in LABELLED} == {HIGH, MEDIUM, LOW}
    assert {language for _, _, language in LABELLED} == {"en", "es", "fr", "pt", "de"}


@pytest.mark.parametrize(("text", "priority", "language"), LABELLED, ids=[t for t, _, _ in LABELLED])
def test_labelled_examples_are_classified_right(classifier, text, priority, language):
    result = classifier.classify(text)

    assert (result.priority, result.language) == (priority, language)
    # Sentiment is English-only: other languages get none rather than a wrong one.
    assert (result.sentiment_score is not None) is (language == "en")


def test_vader_scores_english_within_its_range(classifier):
    angry = classifier.classify("Your service is a disaster, worst company ever").sentiment_score
    happy = classifier.classify("Thanks for the quick answer").sentiment_score
    assert angry is not None and happy is not None
    assert -1 <= angry < -0.4 < 0 < happy <= 1


# -- the rules' edges, with a stand-in language detector and sentiment scorer -----------------


class Detector:
    def __init__(self, language: str = "en") -> None:
        self.language = language

    def detect(self, text: str) -> LanguageGuess:
        return LanguageGuess(self.language, 0.9, fell_back=False)


class Sentiment:
    def __init__(self, score: float) -> None:
        self.score = score
        self.texts: list[str] = []

    def compound(self, text: str) -> float:
        self.texts.append(text)
        return self.score


def classify(
    text: str,
    score: float = 0.0,
    language: str = "en",
    *,
    shouting_raises: bool = True,
    thresholds: Thresholds | None = None,
    keywords: dict[str, list[str]] | None = None,
):
    rules = Classifier(
        UrgentKeywords(keywords or DEFAULT_URGENT_KEYWORDS, "en"),
        Detector(language),
        Sentiment(score),
        thresholds or Thresholds(),
        shouting_raises=shouting_raises,
    )
    return rules.classify(text)


@pytest.mark.parametrize(
    ("score", "priority"),
    [
        (-0.9, HIGH),
        (-0.4001, HIGH),
        (-0.4, MEDIUM),  # "below -0.4" is strict
        (-0.0001, MEDIUM),
        (0.0, LOW),  # "below 0" is strict
        (0.8, LOW),
    ],
)
def test_sentiment_thresholds_are_strictly_below(score, priority):
    assert classify("calm words", score).priority is priority


def test_a_keyword_is_high_whatever_the_sentiment():
    result = classify("I want a refund", score=0.9)
    assert (result.priority, result.keywords) == (HIGH, ("refund",))


def test_thresholds_are_configurable():
    thresholds = Thresholds(high_below=-0.6, medium_below=-0.2)
    assert classify("words", -0.5, thresholds=thresholds).priority is MEDIUM
    assert classify("words", -0.61, thresholds=thresholds).priority is HIGH
    assert classify("words", -0.1, thresholds=thresholds).priority is LOW
    assert Thresholds(-0.3, -0.3).priority(False, -0.3) is LOW


def test_a_high_threshold_above_the_medium_one_is_refused():
    with pytest.raises(ValueError, match=r"^the HIGH sentiment threshold must not be above the MEDIUM one$"):
        Thresholds(high_below=0.1, medium_below=0.0)


def test_sentiment_is_scored_for_english_only_and_rounded():
    scorer = Sentiment(-0.123456)
    english = Classifier(UrgentKeywords({}, "en"), Detector("en"), scorer, Thresholds()).classify("a")
    spanish = Classifier(UrgentKeywords({}, "en"), Detector("es"), scorer, Thresholds()).classify("b")

    assert english.sentiment_score == -0.1235
    assert spanish.sentiment_score is None
    assert scorer.texts == ["a"]  # VADER never sees a text it cannot score
    assert spanish.priority is LOW


@pytest.mark.parametrize(
    ("score", "language", "expected", "raised"),
    [
        (0.0, "en", MEDIUM, True),  # LOW -> MEDIUM
        (-0.2, "en", HIGH, True),  # MEDIUM -> HIGH
        (-0.8, "en", HIGH, False),  # HIGH stays HIGH
        (0.0499, "en", MEDIUM, True),  # not positive yet
        (0.05, "en", LOW, False),  # VADER's positive: enthusiasm
        (0.0, "es", MEDIUM, True),  # no score: shouting counts
    ],
)
def test_shouting_raises_the_priority_one_level(score, language, expected, raised):
    result = classify("WHERE IS MY ORDER", score, language)

    assert (result.priority, result.shouting, result.raised_for_shouting) == (expected, True, raised)


def test_shouting_raises_unless_told_otherwise():
    rules = Classifier(UrgentKeywords({}, "en"), Detector("en"), Sentiment(0.0), Thresholds())
    result = rules.classify("WHERE IS MY ORDER")
    assert (result.priority, result.shouting, result.raised_for_shouting) == (MEDIUM, True, True)


def test_shouting_can_be_told_not_to_raise():
    result = classify("WHERE IS MY ORDER", 0.0, shouting_raises=False)
    assert (result.priority, result.shouting, result.raised_for_shouting) == (LOW, True, False)


def test_calm_text_is_not_raised():
    result = classify("where is my order", 0.0)
    assert (result.priority, result.shouting, result.raised_for_shouting) == (LOW, False, False)


@pytest.mark.parametrize(
    ("text", "shouting"),
    [
        ("Where is it!!", False),  # two is emphasis
        ("Where is it!!!", True),
        ("!!!", True),
        ("ABCDEFGH", True),  # eight letters, all capitals
        ("ABCDEFG", False),  # seven: too short to tell
        ("ABCDEFGHij", True),  # 80% capitals
        ("ABCDEFGhij", False),  # 70%
        ("12345 ABCDEFGH ...", True),  # digits and punctuation do not count
        ("これは大変です。これは大変です", False),  # no capitals in this script
        ("", False),
    ],
)
def test_what_counts_as_shouting(text, shouting):
    assert is_shouting(text) is shouting


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("REFUND!", ("refund",)),
        ("refund, cancel and escalate", ("cancel", "refund", "escalate")),  # configured order
        ("Refundable?", ()),
        ("it is NOT   working...", ("not working",)),
        ("notworking", ()),
        ("it's not-working", ()),  # hyphens join words
        ("", ()),
    ],
)
def test_keywords_match_whole_words_and_phrases(text, found):
    assert UrgentKeywords(DEFAULT_URGENT_KEYWORDS, "en").find(text, "en") == found


# The issue's seed lists, in their configured order.
SEED_KEYWORDS = {
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


@pytest.mark.parametrize("language", sorted(SEED_KEYWORDS))
def test_every_seed_keyword_of_every_language_is_found_in_configured_order(language):
    seed = SEED_KEYWORDS[language]
    text = " / ".join(reversed(seed)).upper()

    assert UrgentKeywords(DEFAULT_URGENT_KEYWORDS, "en").find(text, language) == tuple(seed)
    assert InboxPullSettings.from_env(ENVIRONMENT).urgent_keywords[language] == seed


def test_keywords_ignore_case_and_accents_on_both_sides():
    keywords = UrgentKeywords({"de": ["kündigen"], "en": ["café"]}, "en")
    assert keywords.find("Ich will KUNDIGEN", "de") == ("kündigen",)
    assert keywords.find("the CAFE is closed", "en") == ("café",)


def test_each_language_has_its_own_list_and_others_use_the_default_languages():
    keywords = UrgentKeywords({"en": ["refund"], "es": ["reembolso"], "fr": ["", "  "]}, "en")
    assert keywords.find("quiero un refund", "es") == ()
    assert keywords.find("quiero un reembolso", "es") == ("reembolso",)
    assert keywords.find("I want a refund", "it") == ("refund",)  # no Italian list
    assert keywords.find("I want a refund", "EN") == ("refund",)
    assert keywords.find("refund", "fr") == ()  # blank keywords are dropped, the list stays French
    assert UrgentKeywords({"es": ["reembolso"]}, "en").find("refund", "de") == ()


def test_priorities_raise_one_level_at_a_time():
    assert [p.raised() for p in (LOW, MEDIUM, HIGH)] == [MEDIUM, HIGH, HIGH]


# -- settings ------------------------------------------------------------------------------


def test_settings_default_to_the_issues_seed_values():
    settings = InboxPullSettings.from_env(ENVIRONMENT)
    assert settings.inbox_channels == ["FACEBOOK", "TWITTER", "INSTAGRAM", "WHATSAPP"]
    assert settings.inbox_retention_days == 90
    assert settings.ticket_chunk_size == 50
    assert (settings.high_priority_sentiment_below, settings.medium_priority_sentiment_below) == (-0.4, 0.0)
    assert settings.urgent_keywords["en"] == [
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
    ]


def test_settings_take_keyword_lists_and_thresholds_from_the_environment():
    settings = InboxPullSettings.from_env(
        ENVIRONMENT
        | {
            "URGENT_KEYWORDS": json.dumps({"en": ["asap"], "it": ["rimborso"]}),
            "HIGH_PRIORITY_SENTIMENT_BELOW": "-0.7",
            "MEDIUM_PRIORITY_SENTIMENT_BELOW": "-0.1",
            "INBOX_CHANNELS": "fb_1, wa_2",
            "INBOX_RETENTION_DAYS": "30",
        }
    )
    assert settings.urgent_keywords == {"en": ["asap"], "it": ["rimborso"]}
    assert (settings.high_priority_sentiment_below, settings.medium_priority_sentiment_below) == (-0.7, -0.1)
    assert settings.inbox_channels == ["fb_1", "wa_2"]
    assert settings.inbox_retention_days == 30


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TICKET_CHUNK_SIZE", "51"),  # the issue: chunks of at most 50
        ("INBOX_RETENTION_DAYS", "0"),
        ("INBOX_CHANNELS", " , "),
        ("URGENT_KEYWORDS", "[not json"),
        ("HIGH_PRIORITY_SENTIMENT_BELOW", "0.5"),  # above MEDIUM's 0
        ("MEDIUM_PRIORITY_SENTIMENT_BELOW", "2"),
        ("DEFAULT_LANGUAGE", "it"),
    ],
)
def test_bad_settings_fail_fast_naming_the_variable(name, value):
    with pytest.raises(ConfigurationError, match=name):
        InboxPullSettings.from_env(ENVIRONMENT | {name: value})
