"""POST /opt-out, POST /opt-in, GET /consent/{phone}: validate, record, queue. Never calls CXone."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cxone_relay.platform.api import accepted, build_resolver, ok, route_docs
from cxone_relay.platform.observability import logger, metrics, tracer
from cxone_relay.workflows.consent import models, wiring
from cxone_relay.workflows.consent.settings import ConsentApiSettings

intake = wiring.intake(ConsentApiSettings.from_env())
app = build_resolver(on_invalid=intake.audit_invalid)
INVALID = {422: "A field is invalid (`fields` names it; for a number, why it is not one)"}
OPT_OUT = route_docs(models.OptOutQueued, "Opt a number out", "Queued for DNC sync", INVALID, tag="consent")
OPT_IN = route_docs(models.OptInRecorded, "Record consent", "Recorded", INVALID, 200, "consent")
LOOKUP = route_docs(models.ConsentView, "Look up", "Found", {**INVALID, 404: "No route"}, 200, "consent")
Region = Annotated[str | None, Query(pattern=models.REGION_PATTERN)]


@app.post("/opt-out", **OPT_OUT)
def opt_out(request: Annotated[models.OptOutRequest, Body()]) -> Response[dict[str, Any]]:
    return accepted(intake.opt_out(request, logger.get_correlation_id()))


@app.post("/opt-in", **OPT_IN)
def opt_in(request: Annotated[models.OptInRequest, Body()]) -> Response[dict[str, Any]]:
    return ok(intake.opt_in(request, logger.get_correlation_id()))


@app.get("/consent/<phone>", **LOOKUP)
def consent(phone: str, region: Region = None) -> Response[dict[str, Any]]:
    return ok(intake.lookup(phone, region))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
