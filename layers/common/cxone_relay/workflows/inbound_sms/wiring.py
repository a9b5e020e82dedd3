"""Builds the inbound workflow's objects from settings, once per container. Handlers call one
function here and stay wiring-only; tests call the same functions with the same settings."""

from __future__ import annotations

from cxone_relay.platform.components import Components
from cxone_relay.platform.consumer import SqsConsumer
from cxone_relay.platform.language import LanguageDetector
from cxone_relay.workflows.inbound_sms.intake import InboundIntake
from cxone_relay.workflows.inbound_sms.keyword_actions import KeywordResponder
from cxone_relay.workflows.inbound_sms.keywords import KeywordAction
from cxone_relay.workflows.inbound_sms.models import InboundOutcome, QueuedInboundSms
from cxone_relay.workflows.inbound_sms.processor import InboundProcessor
from cxone_relay.workflows.inbound_sms.routing import CategoryRules, MessageRouter, QueueRouter
from cxone_relay.workflows.inbound_sms.settings import InboundApiSettings, InboundConsumerSettings
from cxone_relay.workflows.inbound_sms.tickets import TicketExport

# Fixed idempotency key prefixes: keys stay stable across renames of handlers and modules.
API_KEY_PREFIX = "sms-ingest"
CONSUMER_KEY_PREFIX = "inbound-sms"


def intake(settings: InboundApiSettings) -> InboundIntake:
    parts = Components(settings)
    return InboundIntake(
        keywords=settings.keyword_rules(),
        spam=settings.spam_rules(),
        audit=parts.audit,
        publisher=parts.publisher(settings.inbound_queue_url),
        default_region=settings.default_phone_region,
        idempotency=parts.idempotency(
            API_KEY_PREFIX,
            settings.idempotency_ttl_seconds,
            # The same id with a different sender, recipient or text is a client bug, not a retry.
            payload_validation_jmespath="[sender, recipient, body]",
        ),
    )


def consumer(settings: InboundConsumerSettings) -> SqsConsumer[QueuedInboundSms, InboundOutcome]:
    parts = Components(settings)
    cxone = parts.cxone().client()
    processor = InboundProcessor(
        cxone=cxone,
        router=MessageRouter(
            LanguageDetector(
                settings.inbound_languages,
                settings.default_language,
                min_letters=settings.language_min_letters,
                min_confidence=settings.language_min_confidence,
            ),
            CategoryRules(settings.routing_rules),
            QueueRouter(settings.routing_queues),
        ),
        keywords=KeywordResponder(
            cxone=cxone,
            ledger=parts.consent,
            opt_outs=parts.publisher(settings.opt_out_queue_url),
            replies={
                KeywordAction.OPT_OUT: settings.opt_out_reply,
                KeywordAction.OPT_IN: settings.opt_in_reply,
                KeywordAction.HELP: settings.help_text,
            },
        ),
        audit=parts.audit,
    )
    tickets = TicketExport(
        parts.ticketing(
            settings.ticketing_base_url, settings.ticketing_api_key_secret_arn, settings.ticket_chunk_size
        ),
        parts.audit,
    )
    return SqsConsumer(
        QueuedInboundSms,
        InboundOutcome,
        process=processor.process,
        idempotency=parts.idempotency(CONSUMER_KEY_PREFIX, settings.idempotency_ttl_seconds),
        finalise=tickets.upsert,
        on_malformed=processor.audit_malformed,
    )
