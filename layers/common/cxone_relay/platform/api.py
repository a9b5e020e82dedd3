"""What every API handler shares: one error shape, and the mapping of failures to statuses.

This is the only module of the layer that knows HTTP. Workflow code raises domain errors
(errors.InvalidFields, errors.Refused); here they become statuses: malformed JSON is 400, a field
that fails validation is 422 naming the field, a request refused by a business rule is 422 with
its reason, and anything unexpected is 503 (not accepted, try again), never a 500 that leaves the
caller guessing whether it was queued.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from pydantic import BaseModel

from cxone_relay.platform.errors import FieldProblem, InvalidFields, InvalidRequest, Refused
from cxone_relay.platform.observability import logger


class FieldError(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    """Every non-2xx body: `error` is a stable code; the rest depends on it."""

    error: str
    message: str | None = None
    reason: str | None = None
    rule: str | None = None
    fields: list[FieldError] | None = None


# Answers every route can give, whatever its workflow.
COMMON_ERRORS = {
    400: "Body is not valid JSON",
    503: "Not accepted (or the same id is still being processed); retry, honouring Retry-After",
}


def documented_responses(
    accepted_model: type[BaseModel], accepted_description: str, errors: dict[int, str]
) -> dict[int, OpenAPIResponse]:
    """OpenAPI `responses` for a route that answers 202 with `accepted_model`: that, the
    route's own errors and the common ones, each documented with ErrorResponse."""
    responses: dict[int, OpenAPIResponse] = {
        202: {"description": accepted_description, "content": {"application/json": {"model": accepted_model}}}
    }
    for status, text in sorted((COMMON_ERRORS | errors).items()):
        responses[status] = {"description": text, "content": {"application/json": {"model": ErrorResponse}}}
    return responses


def accepted(body: BaseModel) -> Response:
    """202: the request is queued (the work happens in the workflow's consumer)."""
    return json_response(202, body.model_dump(mode="json", exclude_none=True))


def read_body_as_json(event: Mapping[str, Any]) -> dict[str, Any]:
    """Our endpoints only speak JSON, but webhook senders label it variously (text/plain, none,
    form-encoded by default in curl); the validating resolver would then parse a form and report
    every field missing. Declaring the body JSON gives a valid body its 202 and anything else a
    clear 400 for malformed JSON."""
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"}
    return dict(event) | {
        "headers": headers | {"content-type": content_types.APPLICATION_JSON},
        "multiValueHeaders": multi | {"content-type": [content_types.APPLICATION_JSON]},
    }


def json_response(status: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _field_name(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in location if part not in ("body",)]
    return ".".join(parts) or "body"


def validation_problems(error: RequestValidationError) -> tuple[bool, list[FieldProblem]]:
    """(is_malformed_json, problems) from Powertools' validation error."""
    errors = list(error.errors())
    malformed = any(item.get("type") == "json_invalid" for item in errors)
    problems = [
        FieldProblem(_field_name(item.get("loc", ())), str(item.get("msg", "invalid"))) for item in errors
    ]
    return malformed, problems


RejectionHook = Callable[[InvalidRequest], None]


class JsonRestResolver(APIGatewayRestResolver):
    """The validating resolver, reading every request body as JSON (see read_body_as_json)."""

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        return super().resolve(read_body_as_json(event), context)


def build_resolver(on_invalid: RejectionHook | None = None) -> APIGatewayRestResolver:
    """A validating REST resolver with the shared error mapping. `on_invalid(reason, problems)`
    lets the workflow audit requests refused at validation."""
    app = JsonRestResolver(enable_validation=True)

    def invalid(reason: str, problems: list[FieldProblem]) -> None:
        if on_invalid is None:
            return
        event = app.current_event
        try:
            parsed = json.loads(event.body or "")
        except ValueError:
            parsed = None
        on_invalid(
            InvalidRequest(
                request_id=event.request_context.request_id,
                body=parsed if isinstance(parsed, dict) else None,
                reason=reason,
                problems=problems,
            )
        )

    @app.exception_handler(RequestValidationError)
    def _request_invalid(error: RequestValidationError) -> Response:
        malformed, problems = validation_problems(error)
        if malformed:
            invalid("malformed JSON", [])
            return json_response(
                400, {"error": "malformed_json", "message": "request body is not valid JSON"}
            )
        invalid("invalid fields", problems)
        return _fields_response(problems)

    @app.exception_handler(InvalidFields)
    def _fields_invalid(error: InvalidFields) -> Response:
        invalid("invalid fields", error.problems)
        return _fields_response(error.problems)

    @app.exception_handler(Refused)
    def _refused(error: Refused) -> Response:
        return json_response(422, {"error": "rejected", "reason": error.reason, **error.details})

    @app.exception_handler(IdempotencyValidationError)
    def _id_reused(_: IdempotencyValidationError) -> Response:
        return json_response(
            409, {"error": "conflict", "message": "this id was already used for a different message"}
        )

    @app.exception_handler(IdempotencyAlreadyInProgressError)
    def _in_progress(_: IdempotencyAlreadyInProgressError) -> Response:
        # Not a 4xx: many channels treat a 4xx as final, and if the first attempt then failed the
        # message would be lost. A 503 with Retry-After brings them back for the real answer.
        return Response(
            status_code=503,
            content_type=content_types.APPLICATION_JSON,
            body={"error": "in_progress", "message": "this id is being processed; retry shortly"},
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        logger.exception("request not accepted")
        return json_response(503, {"error": "unavailable", "message": "not accepted; retry later"})

    return app


def _fields_response(problems: list[FieldProblem]) -> Response:
    return json_response(
        422,
        {
            "error": "validation_failed",
            "message": "; ".join(f"{p.field}: {p.message}" for p in problems),
            "fields": [{"field": p.field, "message": p.message} for p in problems],
        },
    )
