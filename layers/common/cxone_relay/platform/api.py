"""What every API handler shares: one error shape, and the mapping of failures to statuses.

This is the only module of the layer that knows HTTP. Workflow code raises domain errors
(errors.InvalidFields, errors.Refused, errors.Conflict); here they become statuses: malformed JSON
is 400, a field that fails validation is 422 naming the field, a request refused by a business
rule is 422 with its reason, one that contradicts an accepted request is 409, and anything
unexpected is 503 (not accepted, try again), never a 500 that leaves the caller guessing whether
it was queued. A route without an API key authenticates its requests itself (a signature over
the raw body): a request that fails is 401 before its body is read.
"""

from __future__ import annotations

import base64
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

from cxone_relay.platform.errors import (
    Conflict,
    FieldProblem,
    InvalidFields,
    InvalidRequest,
    Refused,
    Unauthenticated,
)
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


class GatewayError(BaseModel):
    """API Gateway's own answer (for a missing or wrong x-api-key, or an unknown route)."""

    message: str


UNAUTHENTICATED = "The request's signature is missing, wrong, stale or not over this body"
# Answers every route can give, whatever its workflow.
COMMON_ERRORS = {
    400: "Body is not one JSON object (malformed JSON, an array, not UTF-8, nested too deeply)",
    413: "Body larger than 64 KB",
    503: "Not accepted (or the same id is still being processed); retry, honouring Retry-After",
}


def documented_responses(
    accepted_model: type[BaseModel],
    accepted_description: str,
    errors: dict[int, str],
    *,
    status: int = 202,
    others: Mapping[int, tuple[type[BaseModel], str]] | None = None,
    api_key: bool = True,
) -> dict[int, OpenAPIResponse]:
    """OpenAPI `responses` for a route that answers `status` (202 unless said) with `accepted_model`:
    that, any `others` (another success, say), the route's own errors and the common ones, each
    documented with ErrorResponse, and API Gateway's 403 for a missing or wrong API key (or, on a
    route without one, the 401 its own authentication answers)."""
    responses: dict[int, OpenAPIResponse] = {
        status: {
            "description": accepted_description,
            "content": {"application/json": {"model": accepted_model}},
        },
    }
    for other, (model, text) in (others or {}).items():
        responses[other] = {"description": text, "content": {"application/json": {"model": model}}}
    if api_key:
        responses[403] = {
            "description": "Missing or wrong x-api-key (answered by API Gateway)",
            "content": {"application/json": {"model": GatewayError}},
        }
    else:
        errors = {401: UNAUTHENTICATED} | errors
    for code, text in (COMMON_ERRORS | errors).items():
        responses[code] = {"description": text, "content": {"application/json": {"model": ErrorResponse}}}
    return dict(sorted(responses.items()))


def route_docs(
    model: type[BaseModel],
    summary: str,
    answer: str,
    errors: dict[int, str],
    success: int = 202,
    tag: str = "",
) -> dict[str, Any]:
    """A route decorator's documentation keywords (summary, tags, responses), so a handler with
    several routes stays a screenful: `@app.post(path, **route_docs(...))`."""
    return {
        "summary": summary,
        "tags": [tag] if tag else None,
        "responses": documented_responses(model, answer, errors, status=success),
    }


def accepted(body: BaseModel) -> Response:
    """202: the request is queued (the work happens in the workflow's consumer)."""
    return json_response(202, body.model_dump(mode="json", by_alias=True, exclude_none=True))


def ok(body: BaseModel) -> Response:
    """200: the request is done (a read, or a change recorded before answering)."""
    return json_response(200, body.model_dump(mode="json"))


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
# Checks who sent a request from its exact body bytes and headers; raises Unauthenticated.
Authenticator = Callable[[bytes, Mapping[str, str]], None]

# A webhook body is a few KB; anything near Lambda's 6 MB payload limit is abuse or a client bug.
MAX_BODY_BYTES = 64 * 1024
# Our bodies are flat objects; deep nesting only costs parsing and validation time.
MAX_JSON_DEPTH = 32
# Methods whose requests carry no body: a GET is answered from its path and query alone.
BODYLESS_METHODS = frozenset({"GET", "HEAD"})


class BodyRefused(Exception):
    """The body cannot be a request at all (too big, not UTF-8, not one JSON object)."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any) -> int:
    """How deeply lists and objects nest, counted without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            pending.extend(
                (child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def read_body(event: Mapping[str, Any], max_bytes: int = MAX_BODY_BYTES) -> bytes:
    """The request body's bytes exactly as the client sent them (what a signature covers)."""
    raw = event.get("body") or ""
    try:
        data = (
            base64.b64decode(raw, validate=True)
            if event.get("isBase64Encoded")
            else raw.encode("utf-8", "surrogatepass")
        )
    except ValueError:
        raise BodyRefused(400, "malformed_body", "the body is not valid base64") from None
    if len(data) > max_bytes:
        raise BodyRefused(413, "payload_too_large", f"the body is larger than {max_bytes} bytes")
    return data


def parse_json_object(data: bytes) -> tuple[str, dict[str, Any]]:
    """The body as text and as the one JSON object it must be, or BodyRefused (see read_json_object)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyRefused(400, "not_utf8", "the body is not UTF-8") from None
    try:
        parsed = json.loads(text, parse_constant=_json_constant)
    except RecursionError:
        raise BodyRefused(400, "malformed_json", "the body is nested too deeply") from None
    except ValueError:
        raise BodyRefused(400, "malformed_json", "request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise BodyRefused(400, "not_an_object", "the body must be one JSON object")
    if _depth(parsed) > MAX_JSON_DEPTH:
        raise BodyRefused(400, "malformed_json", "the body is nested too deeply")
    return text, parsed


def read_json_object(event: Mapping[str, Any], max_bytes: int = MAX_BODY_BYTES) -> tuple[str, dict[str, Any]]:
    """The request body as text and as the one JSON object it must be, or BodyRefused.

    The API passes every body through as bytes (binary media type */*, so API Gateway base64s it)
    because a text body is decoded by API Gateway with replacement characters, hiding a Latin-1
    body. Here the bytes must be UTF-8, at most `max_bytes`, strict JSON (no NaN), and one object
    nested at most MAX_JSON_DEPTH deep: a JSON array would otherwise be read as its first element."""
    return parse_json_object(read_body(event, max_bytes))


def request_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """The request's headers, names lower-cased (HTTP header names are case-insensitive)."""
    return {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}


def as_json_request(event: Mapping[str, Any], text: str) -> dict[str, Any]:
    """The event with its body as checked text, labelled JSON. Webhook senders label JSON
    variously (text/plain, none, form-encoded by default in curl), and the validating resolver
    would parse a form and report every field missing."""
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"}
    return dict(event) | {
        "body": text,
        "isBase64Encoded": False,
        "headers": headers | {"content-type": content_types.APPLICATION_JSON},
        "multiValueHeaders": multi | {"content-type": [content_types.APPLICATION_JSON]},
    }


class JsonRestResolver(APIGatewayRestResolver):
    """The validating resolver, reading every request body through read_json_object first."""

    def __init__(
        self, on_invalid: RejectionHook | None, max_body_bytes: int, authenticate: Authenticator | None = None
    ) -> None:
        super().__init__(enable_validation=True)
        self._on_invalid = on_invalid
        self._max_body_bytes = max_body_bytes
        self._authenticate = authenticate
        self.request_body: dict[str, Any] | None = None

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        self.request_body = None
        if str(event.get("httpMethod", "")).upper() in BODYLESS_METHODS:
            # Whatever body a client sent with a GET is not read (API Gateway passes it on).
            return super().resolve(dict(event) | {"body": None, "isBase64Encoded": False}, context)
        try:
            raw = read_body(event, self._max_body_bytes)
            if self._authenticate is not None:
                # Before the body is even parsed: an unsigned request learns nothing about it.
                self._authenticate(raw, request_headers(event))
            text, self.request_body = parse_json_object(raw)
        except Unauthenticated as refused:
            logger.warning("request not authenticated", extra={"reason": str(refused)})
            return _raw_answer(401, "unauthorized", "the request is not signed, or not validly")
        except BodyRefused as refused:
            self.report_invalid(_request_id(event), refused.error, [])
            return _raw_answer(refused.status, refused.error, refused.message)
        return super().resolve(as_json_request(event, text), context)

    def report_invalid(self, request_id: str, reason: str, problems: list[FieldProblem]) -> None:
        """Tell the workflow (to audit it). Its failure is logged, never the caller's problem:
        the answer stays the 4xx the request earned."""
        if self._on_invalid is None:
            return
        try:
            self._on_invalid(InvalidRequest(request_id, self.request_body, reason, problems))
        except Exception:
            logger.exception("could not record a refused request", extra={"request_id": request_id})


def _raw_answer(status: int, error: str, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "multiValueHeaders": {"Content-Type": [content_types.APPLICATION_JSON]},
        "body": json.dumps({"error": error, "message": message}),
        "isBase64Encoded": False,
    }


def _request_id(event: Mapping[str, Any]) -> str:
    context = event.get("requestContext")
    request_id = context.get("requestId") if isinstance(context, dict) else None
    return str(request_id or "unknown")


def build_resolver(
    on_invalid: RejectionHook | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    authenticate: Authenticator | None = None,
) -> APIGatewayRestResolver:
    """A validating REST resolver with the shared error mapping. `on_invalid` lets the workflow
    audit requests refused before its own logic ran; `authenticate` checks who sent each request
    (a signed webhook, on a route without an API key) before anything else, and its refusal is 401."""
    app = JsonRestResolver(on_invalid, max_body_bytes, authenticate)

    def invalid(reason: str, problems: list[FieldProblem]) -> None:
        app.report_invalid(app.current_event.request_context.request_id, reason, problems)

    @app.exception_handler(RequestValidationError)
    def _request_invalid(error: RequestValidationError) -> Response:
        malformed, problems = validation_problems(error)
        if malformed:
            invalid("malformed_json", [])
            return json_response(
                400, {"error": "malformed_json", "message": "request body is not valid JSON"}
            )
        invalid("invalid_fields", problems)
        return _fields_response(problems)

    @app.exception_handler(InvalidFields)
    def _fields_invalid(error: InvalidFields) -> Response:
        invalid("invalid_fields", error.problems)
        return _fields_response(error.problems)

    @app.exception_handler(Refused)
    def _refused(error: Refused) -> Response:
        return json_response(422, {"error": "rejected", "reason": error.reason, **error.details})

    @app.exception_handler(IdempotencyValidationError)
    def _id_reused(_: IdempotencyValidationError) -> Response:
        return json_response(
            409,
            {
                "error": "conflict",
                "message": "this id (or Idempotency-Key) was already used for a different request",
            },
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

    @app.exception_handler(Conflict)
    def _conflict(error: Conflict) -> Response:
        return json_response(409, {"error": "conflict", "message": str(error)})

    @app.not_found
    def _no_route(_: Exception) -> Response:
        # API Gateway routes only this function's paths here; a path parameter holding characters
        # the resolver's routes cannot match (a "#", an emoji) ends here.
        return json_response(404, {"error": "not_found", "message": "no such resource"})

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
