"""POST /sms/inbound: validate, apply the intake rules, queue. Never calls CXone."""

from __future__ import annotations

import json
from typing import Annotated, Any

import boto3
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cxone_relay.api import FieldProblem, build_resolver, error_responses
from cxone_relay.audit import AuditWriter
from cxone_relay.idempotency import Idempotency
from cxone_relay.inbound.config import IngestSettings
from cxone_relay.inbound.intake import InboundIntake
from cxone_relay.inbound.models import AcceptedResponse, InboundSmsRequest
from cxone_relay.observability import logger, metrics, tracer
from cxone_relay.queueing import QueuePublisher
from cxone_relay.redaction import PhoneHasher
from cxone_relay.secrets import secret_text

settings = IngestSettings.from_env()
idempotency = Idempotency(
    settings.idempotency_table,
    key_prefix="sms-ingest",
    key_jmespath="id",
    # The same id with a different sender, recipient or text is a client bug, not a retry.
    payload_validation_jmespath="[sender, recipient, body]",
    ttl_seconds=settings.idempotency_ttl_seconds,
)
intake = InboundIntake(
    keywords=settings.keyword_rules(),
    spam=settings.spam_rules(),
    audit=AuditWriter(
        settings.audit_table,
        boto3.client("dynamodb"),
        PhoneHasher(secret_text(settings.pii_hash_key_secret_arn)),
        settings.audit_retention_days,
    ),
    publisher=QueuePublisher(boto3.client("sqs"), settings.inbound_queue_url),
    default_region=settings.default_phone_region,
    idempotent=idempotency,
)


def _audit_invalid(reason: str, problems: list[FieldProblem]) -> None:
    event = app.current_event
    subject = event.request_context.request_id
    try:
        body = json.loads(event.body or "")
        if isinstance(body, dict) and isinstance(body.get("id"), str) and body["id"]:
            subject = body["id"][:128]
    except ValueError:
        pass
    intake.audit_invalid(subject, reason, problems)


app = build_resolver(on_invalid=_audit_invalid)


@app.post(
    "/sms/inbound",
    summary="Receive an inbound SMS from the channel",
    description=(
        "Keywords (STOP/START/HELP) are always accepted; other messages need opt_in and pass the spam rules."
    ),
    tags=["inbound-sms"],
    responses={
        202: {
            "description": "Queued (also for a repeated id)",
            "content": {"application/json": {"model": AcceptedResponse}},
        },
        **error_responses(
            {
                400: "Body is not valid JSON",
                409: "Id reused for a different message",
                422: "A field is invalid (`fields` names it), or the message was refused (`reason`)",
                503: "Not accepted (or the same id is still being processed); retry, honouring Retry-After",
            }
        ),
    },
)
def receive_inbound_sms(message: Annotated[InboundSmsRequest, Body()]) -> Response[dict[str, Any]]:
    accepted = intake.accept(message, correlation_id=logger.get_correlation_id())
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=accepted.model_dump(exclude_none=True),
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register(context)
    return app.resolve(event, context)
