"""Keyword, spam and routing rules of the inbound workflow, on the configured defaults."""

from __future__ import annotations

import pytest

from cxone_relay.platform.language import LanguageDetector, LanguageGuess
from cxone_relay.workflows.inbound_sms.keywords import KeywordAction, KeywordRules
from cxone_relay.workflows.inbound_sms.moderation import SpamRules
from cxone_relay.workflows.inbound_sms.routing import (
    DEFAULT_ROUTING_RULES,
    CategoryRules,
    MessageRouter,
    QueueRouter,
)

RULES = KeywordRules.from_lists()
OUT, IN, HELP = KeywordAction.OPT_OUT, KeywordAction.OPT_IN, KeywordAction.HELP


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # opt-out by first word
        ("STOP", OUT),
        ("stop", OUT),
        ("  Stop.  ", OUT),
        ("STOP please", OUT),
        ("Stop sending me these", OUT),
        ("STOP!!!", OUT),
        ("stop, please", OUT),
        ("STOPALL", OUT),
        ("unsubscribe", OUT),
        ("Unsubscribe me now", OUT),
        ("OPTOUT", OUT),
        ("opt-out", OUT),
        ("Opt-Out please", OUT),
        ("REVOKE", OUT),
        ("arrêt", OUT),
        ("ARRET svp", OUT),
        ("Baja", OUT),
        # opt-out only as the whole message
        ("Cancel", OUT),
        ("CANCEL!", OUT),
        ("end", OUT),
        ("Quit.", OUT),
        ("remove", OUT),
        ("TD", OUT),
        ("alto", OUT),
        ("I need to cancel my order", None),
        ("Cancel my order", None),
        ("End of the month invoice is wrong", None),
        ("Remove the late fee please", None),
        ("Please stop", None),
        ("nonstop service", None),
        ("stopping by later", None),
        # opt-in
        ("START", IN),
        ("start", IN),
        ("Unstop", IN),
        ("yes", IN),
        ("Yes!", IN),
        ("Yes I have a question", None),
        ("start my service", None),
        # help
        ("HELP", HELP),
        ("help?", HELP),
        ("Info", HELP),
        ("I need help with my bill", None),
        ("", None),
        ("!!!", None),
    ],
)
def test_keywords(text, expected):
    assert RULES.classify(text) == expected


def test_keyword_lists_are_configurable():
    rules = KeywordRules.from_lists(
        opt_out_first_words=["PARAR"],
        opt_out_exact_words=["FIN"],
        opt_in_words=["ALTA"],
        help_words=["AYUDA"],
    )
    assert rules.classify("parar ya") == OUT
    assert rules.classify("fin") == OUT
    assert rules.classify("stop") is None
    assert rules.classify("alta") == IN
    assert rules.classify("ayuda") == HELP


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("You won a FREE LOTTERY prize", "free lottery"),
        ("Frée  Lottéry!", "free lottery"),
        ("WINNER NOTIFICATION: claim", "winner notification"),
        ("Act now, offer ends", "act now"),
        ("Click here to claim your gift", "click here to claim"),
        ("click-here to claim", None),  # the hyphen joins the words: not the phrase
        ("I will act nowhere near that", None),
        ("My lottery ticket is free?", None),
    ],
)
def test_spam_phrases(text, rule):
    verdict = SpamRules().check(text)
    assert (verdict.rule if verdict else None) == rule


@pytest.mark.parametrize(
    ("text", "category", "keywords"),
    [
        ("My invoice is wrong", "billing", ("invoice",)),
        ("Two charges on my card and I want a refund", "billing", ("charge", "refund")),
        ("Invoices for March please", "billing", ("invoice",)),
        ("I get an error at login", "technical", ("error", "login")),
        ("Please RESET my password", "technical", ("password", "reset")),
        ("What are your opening hours?", "general", ()),
    ],
)
def test_categories(text, category, keywords):
    result = CategoryRules(DEFAULT_ROUTING_RULES).categorise(text)
    assert (result.name, result.keywords) == (category, keywords)


ACCOUNT_RULES = {"account": ["log in", "sign up"], "billing": ["bill"], "legal": ["pa", "law"]}


@pytest.mark.parametrize(
    ("text", "category", "keywords"),
    [
        # A keyword of several words matches those words together, in order, across punctuation.
        ("I can't LOG IN since Monday", "account", ("log in",)),
        ("Where do I sign up?", "account", ("sign up",)),
        # ...and not the words apart, or out of order.
        ("The log says I am in", "general", ()),
        ("In the log, nothing", "general", ()),
        ("Please log it in the bill", "billing", ("bill",)),
        # A word of four letters or more may be a plural; a shorter one is never stripped.
        ("Two bills this month", "billing", ("bill",)),
        ("New laws apply", "legal", ("law",)),
        ("Our pas de deux tickets", "general", ()),
    ],
)
def test_category_keywords_of_several_words_and_plurals(text, category, keywords):
    result = CategoryRules(ACCOUNT_RULES).categorise(text)
    assert (result.name, result.keywords) == (category, keywords)


class FixedDetector:
    def __init__(self, guess: LanguageGuess) -> None:
        self.guess = guess

    def detect(self, text: str) -> LanguageGuess:
        return self.guess


def test_message_router_decides_language_category_and_queue_together():
    router = MessageRouter(
        FixedDetector(LanguageGuess("es", 0.876543, fell_back=False)),  # type: ignore[arg-type]
        CategoryRules(DEFAULT_ROUTING_RULES),
        QueueRouter({"es:billing": "facturacion"}),
    )

    routing = router.route("Quiero un refund")

    assert routing.model_dump() == {
        "category": "billing",
        "keywords": ["refund"],
        "language": "es",
        "language_confidence": 0.877,  # three places: what the audit and CXone show
        "language_fallback": False,
        "queue": "facturacion",
    }


def test_router_prefers_the_most_specific_key():
    router = QueueRouter(
        {"en:billing": "billing-en", "es:*": "spanish", "*:technical": "tech", "*:*": "fallback"}
    )
    assert router.queue_for("en", "billing") == "billing-en"
    assert router.queue_for("es", "billing") == "spanish"
    assert router.queue_for("fr", "technical") == "tech"
    assert router.queue_for("fr", "general") == "fallback"
    assert QueueRouter({}).queue_for("de", "billing") == "billing"


DETECTOR = LanguageDetector(["en", "es", "fr", "pt", "de"], "en")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Hi, I need help with the invoice I received yesterday", "en"),
        ("Hola, necesito ayuda con la factura del mes pasado", "es"),
        ("Bonjour, je n'arrive pas à me connecter à mon compte", "fr"),
        ("Olá, preciso de ajuda com o pagamento da minha conta", "pt"),
        ("Hallo, ich habe ein Problem mit meinem Passwort", "de"),
    ],
)
def test_language_detection(text, language):
    guess = DETECTOR.detect(text)
    assert guess.language == language
    assert not guess.fell_back


@pytest.mark.parametrize("text", ["Hola", "ok", "merci", "ja 123"])
def test_short_texts_fall_back_to_the_default_language(text):
    guess = DETECTOR.detect(text)
    assert guess == guess.__class__("en", 0.0, fell_back=True)


def test_low_confidence_falls_back():
    strict = LanguageDetector(["en", "es", "fr", "pt", "de"], "en", min_confidence=0.99)
    guess = strict.detect("Olá, preciso de ajuda com o pagamento")
    assert guess.fell_back and guess.language == "en" and 0 < guess.confidence < 0.99
