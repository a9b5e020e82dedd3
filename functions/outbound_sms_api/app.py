"""POST /sms/outbound: validate, judge each recipient (consent, quiet hours), queue or hold."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cxone_relay.platform.api import build_resolver, documented_responses, json_response
from cxone_relay.platform.observability import logger, metrics, tracer
from cxone_relay.workflows.outbound_sms import models, wiring
from cxone_relay.workflows.outbound_sms.settings import OutboundApiSettings

intake = wiring.intake(OutboundApiSettings.from_env())
app = build_resolver(on_invalid=intake.audit_invalid)
ERRORS = {409: "Idempotency-Key reused with another body", 422: "A field is invalid (`fields` names it)"}
IdempotencyKey = Header(alias="Idempotency-Key", pattern=models.IDEMPOTENCY_KEY_PATTERN)


@app.post(
    "/sms/outbound",
    summary="Send a campaign SMS to up to 100 recipients: each is queued, held or refused",
    tags=["outbound-sms"],
    responses=documented_responses(models.OutboundAccepted, "Accepted", ERRORS, others=models.DRY_RUN_ANSWER),
)
def send_outbound_sms(
    request: Annotated[models.OutboundSmsRequest, Body()],
    idempotency_key: Annotated[str | None, IdempotencyKey] = None,
) -> Response[dict[str, Any]]:
    client = app.current_event.request_context.identity.api_key_id  # Idempotency-Keys are per API key
    return json_response(*intake.accept(request, idempotency_key=idempotency_key, client=client))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    intake.register(context)
    return app.resolve(event, context)
