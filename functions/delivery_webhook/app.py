"""POST /sms/status: the SMS channel's delivery report, signed (no API key). Verify, validate, queue."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cxone_relay.platform.api import accepted, build_resolver, documented_responses
from cxone_relay.platform.observability import logger, metrics, tracer
from cxone_relay.workflows.outbound_sms import wiring
from cxone_relay.workflows.outbound_sms.models import DeliveryStatusRequest, StatusAccepted
from cxone_relay.workflows.outbound_sms.settings import DeliveryWebhookSettings

delivery, verifier = wiring.delivery_intake(DeliveryWebhookSettings.from_env())
# The signature is checked on the raw body before anything else: a 401 changes nothing. The
# verifier is looked up per request, so a test can put in one with its own clock.
app = build_resolver(on_invalid=delivery.audit_invalid, authenticate=lambda *r: verifier.verify(*r))  # noqa: PLW0108
Signature = Header(
    alias="X-Signature", description='t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>'
)
ERRORS = {422: "A field is invalid (`fields` names it)"}


@app.post(
    "/sms/status",
    summary="Receive a delivery report from the SMS channel (signed, no API key)",
    tags=["delivery-status"],
    security=[],
    responses=documented_responses(StatusAccepted, "Queued", ERRORS, api_key=False),
)
def receive_delivery_status(
    report: Annotated[DeliveryStatusRequest, Body()], signature: Annotated[str | None, Signature] = None
) -> Response[dict[str, Any]]:
    return accepted(delivery.accept(report, correlation_id=logger.get_correlation_id()))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
