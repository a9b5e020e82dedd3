"""Builds the inbound workflow's objects from settings, once per container. Handlers call one
function here and stay wiring-only; tests call the same functions with the same settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cxone_relay.platform.components import Components
from cxone_relay.workflows.inbound_sms.intake import InboundIntake
from cxone_relay.workflows.inbound_sms.settings import InboundApiSettings, InboundConsumerSettings

if TYPE_CHECKING:
    from cxone_relay.platform.consumer import SqsConsumer
    from cxone_relay.workflows.inbound_sms.models import InboundOutcome, QueuedInboundSms

# A fixed idempotency key prefix: keys stay stable across renames of handlers and modules.
CONSUMER_KEY_PREFIX = "inbound-sms"


def intake(settings: InboundApiSettings) -> InboundIntake:
    parts = Components(settings)
    return InboundIntake(
        keywords=settings.keyword_rules(),
        spam=settings.spam_rules(),
        audit=parts.audit,
        publisher=parts.publisher(settings.inbound_queue_url),
        default_region=settings.default_phone_region,
        hasher=parts.hasher,
        max_age_seconds=settings.max_message_age_seconds,
    )


def consumer(settings: InboundConsumerSettings) -> SqsConsumer[QueuedInboundSms, InboundOutcome]:
    # Imported here, not at the top: the API function imports this module too, and must not pay
    # for the consumer's machinery (CXone client, HTTP stack, batch processor) in its cold start.
    from cxone_relay.platform.consumer import SqsConsumer  # noqa: PLC0415
    from cxone_relay.platform.language import LanguageDetector  # noqa: PLC0415
    from cxone_relay.workflows.inbound_sms.audit import WORKFLOW, audit_subject  # noqa: PLC0415
    from cxone_relay.workflows.inbound_sms.keyword_actions import KeywordResponder  # noqa: PLC0415
    from cxone_relay.workflows.inbound_sms.keywords import KeywordAction  # noqa: PLC0415
    from cxone_relay.workflows.inbound_sms.models import InboundOutcome, QueuedInboundSms  # noqa: PLC0415
    from cxone_relay.workflows.inbound_sms.processor import InboundProcessor  # noqa: PLC0415
    from cxone_relay.workflows.inbound_sms.routing import CategoryRules, MessageRouter, QueueRouter  # noqa: PLC0415
    from cxone_relay.workflows.inbound_sms.tickets import TicketExport  # noqa: PLC0415

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
    )
    tickets = None
    if settings.ticketing_base_url and settings.ticketing_api_key_secret_arn:
        ticketing = parts.ticketing(
            settings.ticketing_base_url, settings.ticketing_api_key_secret_arn, settings.ticket_chunk_size
        )
        tickets = TicketExport(ticketing)
    return SqsConsumer(
        QueuedInboundSms,
        InboundOutcome,
        process=processor.process,
        idempotency=parts.idempotency(CONSUMER_KEY_PREFIX, settings.idempotency_ttl_seconds),
        dead_letters=parts.dead_letters(WORKFLOW),
        audit=parts.audit,
        audit_subject=audit_subject,
        finalise=tickets.upsert if tickets else None,
    )
