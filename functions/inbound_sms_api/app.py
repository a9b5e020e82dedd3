"""POST /sms/inbound: validate, apply the intake rules, queue. Never calls CXone."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cxone_relay.platform.api import accepted, build_resolver, documented_responses
from cxone_relay.platform.observability import logger, metrics, tracer
from cxone_relay.workflows.inbound_sms import wiring
from cxone_relay.workflows.inbound_sms.models import AcceptedResponse, InboundSmsRequest
from cxone_relay.workflows.inbound_sms.settings import InboundApiSettings

intake = wiring.intake(InboundApiSettings.from_env())
app = build_resolver(on_invalid=intake.audit_invalid)


@app.post(
    "/sms/inbound",
    summary="Receive an inbound SMS from the channel",
    description="Keywords (STOP/START/HELP) are always accepted; other messages need consent and no spam.",
    tags=["inbound-sms"],
    responses=documented_responses(
        AcceptedResponse,
        "Queued (also for a repeated id)",
        {
            409: "Id reused for a different message",
            422: "A field is invalid (`fields` names it), or the message was refused (`reason`)",
        },
    ),
)
def receive_inbound_sms(message: Annotated[InboundSmsRequest, Body()]) -> Response[dict[str, Any]]:
    return accepted(intake.accept(message, correlation_id=logger.get_correlation_id()))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
