"""POST /dtmf: validate, queue for the DTMF consumer. Never calls CXone."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cxone_relay.platform.api import accepted, build_resolver, documented_responses
from cxone_relay.platform.observability import logger, metrics, tracer
from cxone_relay.workflows.dtmf import wiring
from cxone_relay.workflows.dtmf.models import AcceptedResponse, DtmfSubmission
from cxone_relay.workflows.dtmf.settings import DtmfApiSettings

intake = wiring.intake(DtmfApiSettings.from_env())
app = build_resolver(on_invalid=intake.audit_invalid)


@app.post(
    "/dtmf",
    summary="Send DTMF digits to a live CXone agent session",
    description="Validated here, queued, and sent by the DTMF consumer within timeout_ms.",
    tags=["dtmf"],
    responses=documented_responses(
        AcceptedResponse,
        "Queued; `id` names the request in the audit",
        {422: "A field is invalid (`fields` names it)"},
    ),
)
def submit_dtmf(request: Annotated[DtmfSubmission, Body()]) -> Response[dict[str, Any]]:
    return accepted(intake.accept(request, correlation_id=logger.get_correlation_id()))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
