"""inbound-sms consumer: keywords, routing, CXone store, then one ticket upsert per batch."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from cxone_relay.audit import AuditWriter
from cxone_relay.consent import ConsentLedger
from cxone_relay.consumer import SqsConsumer
from cxone_relay.cxone.client import CxoneGateway
from cxone_relay.idempotency import Idempotency
from cxone_relay.inbound.config import InboundConsumerSettings
from cxone_relay.inbound.keywords import KeywordAction
from cxone_relay.inbound.processing import InboundProcessor
from cxone_relay.inbound.routing import CategoryRules, QueueRouter
from cxone_relay.language import LanguageDetector
from cxone_relay.observability import logger, metrics, tracer
from cxone_relay.queueing import QueuePublisher
from cxone_relay.redaction import PhoneHasher
from cxone_relay.secrets import secret_json, secret_text
from cxone_relay.ticketing import TicketingClient
from cxone_relay.transport import RetryingHttp

settings = InboundConsumerSettings.from_env()
dynamodb = boto3.client("dynamodb")
hasher = PhoneHasher(secret_text(settings.pii_hash_key_secret_arn))
processor = InboundProcessor(
    cxone=CxoneGateway(settings).client(),
    ledger=ConsentLedger(settings.state_table, dynamodb, hasher),
    audit=AuditWriter(settings.audit_table, dynamodb, hasher, settings.audit_retention_days),
    opt_outs=QueuePublisher(boto3.client("sqs"), settings.opt_out_queue_url),
    detector=LanguageDetector(
        settings.inbound_languages,
        settings.default_language,
        min_letters=settings.language_min_letters,
        min_confidence=settings.language_min_confidence,
    ),
    categories=CategoryRules(settings.routing_rules),
    router=QueueRouter(settings.routing_queues),
    ticketing=TicketingClient(
        settings.ticketing_base_url,
        secret_json(settings.ticketing_api_key_secret_arn, required=("api_key",))["api_key"],
        RetryingHttp("ticketing"),
        chunk_size=settings.ticket_chunk_size,
    ),
    replies={
        KeywordAction.OPT_OUT: settings.opt_out_reply,
        KeywordAction.OPT_IN: settings.opt_in_reply,
        KeywordAction.HELP: settings.help_text,
    },
)
consumer = SqsConsumer(
    process=processor.process,
    idempotency=Idempotency(
        settings.idempotency_table, key_prefix="inbound-sms", ttl_seconds=settings.idempotency_ttl_seconds
    ),
    finalise=processor.upsert_tickets,
    on_malformed=processor.audit_malformed,
)


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.handle(event, context)
