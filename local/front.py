"""The local API Gateway: routes the template's API events to their functions over HTTP.

It answers the way API Gateway REST answers (Lambda proxy integration): the proxy event in,
the proxy result out, 403 for unknown routes and missing API keys, 502 when the function fails.
Under /_local/ it also serves what only a local stack has: the schedule trigger and queue depths.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from local.events import api_gateway_event
from local.runtime import FunctionError
from local.serving import BackgroundServer
from local.template import LOCAL_ACCOUNT, LOCAL_REGION, ApiRoute, Template

logger = logging.getLogger(__name__)

RAW_HEADERS_KEY = "local.raw_headers"
LAMBDA_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
LOCAL_API_KEY_ID = "local-api-key"


class Backend(Protocol):
    """What the front needs from the stack behind it."""

    def invoke(self, function_id: str, event: dict[str, Any]) -> Any: ...

    def queue_report(self) -> dict[str, Any]: ...

    def function_description(self, function_id: str) -> dict[str, Any] | None: ...


class _RawHeadersHandler(WSGIRequestHandler):
    """Keeps header names as the client sent them (WSGI upper-cases them), as API Gateway does,
    and leaves request logging to the front, which knows the function each request went to."""

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ[RAW_HEADERS_KEY] = list(self.headers.items())
        return environ

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def gateway_error(status: int, message: str, error_type: str) -> Response:
    """API Gateway's own error answer: {"message": ...} and the x-amzn-ErrorType header."""
    return Response(
        json.dumps({"message": message}),
        status=status,
        mimetype="application/json",
        headers={"x-amzn-ErrorType": error_type, "x-amzn-RequestId": str(uuid.uuid4())},
    )


def missing_token() -> Response:
    return gateway_error(403, "Missing Authentication Token", "MissingAuthenticationTokenException")


def forbidden() -> Response:
    return gateway_error(403, "Forbidden", "ForbiddenException")


def internal_error() -> Response:
    return gateway_error(502, "Internal server error", "InternalServerErrorException")


def proxy_response(result: Any) -> Response:
    """Translate a Lambda proxy result into HTTP; a malformed one is a 502, as in API Gateway."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        logger.error("malformed Lambda proxy response: %.200r", result)
        return internal_error()
    headers = Headers()
    for name, values in _merged_headers(result).items():
        for value in values:
            headers.add(name, value)
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    if "Content-Type" not in headers:
        # API Gateway's default for proxy integrations; werkzeug's would be text/plain.
        headers["Content-Type"] = "application/json"
    return Response(raw, status=result["statusCode"], headers=headers)


def _merged_headers(result: Mapping[str, Any]) -> dict[str, list[str]]:
    """headers and multiValueHeaders merged as API Gateway does: a pair given in both appears once."""
    merged: dict[str, list[str]] = {
        str(name): [str(value) for value in values or []]
        for name, values in (result.get("multiValueHeaders") or {}).items()
    }
    for name, value in (result.get("headers") or {}).items():
        values = merged.setdefault(str(name), [])
        if str(value) not in values:
            values.append(str(value))
    return merged


@dataclass(frozen=True)
class ScheduleTrigger:
    """A Schedule or ScheduleV2 event of a function, as far as the delivered event depends on it."""

    function_id: str
    name: str
    kind: str  # "Schedule" (EventBridge rule) or "ScheduleV2" (EventBridge Scheduler)
    input: str | None  # the event's Input property: delivered instead of the default event


def schedule_triggers(template: Template, resolve: Callable[[Any], Any]) -> dict[str, ScheduleTrigger]:
    """The first schedule event of every function that has one."""
    triggers: dict[str, ScheduleTrigger] = {}
    for source in template.schedule_sources():
        if source.function_id in triggers:
            continue
        event = template.resources[source.function_id]["Properties"]["Events"][source.name]
        raw_input = event.get("Properties", {}).get("Input")
        triggers[source.function_id] = ScheduleTrigger(
            source.function_id,
            source.name,
            str(event["Type"]),
            None if raw_input is None else str(resolve(raw_input)),
        )
    return triggers


def schedule_event(trigger: ScheduleTrigger) -> Any:
    """What EventBridge delivers when the schedule fires: its Input, or the default notification."""
    if trigger.input is not None:
        return json.loads(trigger.input)
    scheduler = trigger.kind == "ScheduleV2"
    resource = (
        f"arn:aws:scheduler:{LOCAL_REGION}:{LOCAL_ACCOUNT}:schedule/default/{trigger.name}"
        if scheduler
        else f"arn:aws:events:{LOCAL_REGION}:{LOCAL_ACCOUNT}:rule/{trigger.name}"
    )
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler" if scheduler else "aws.events",
        "account": LOCAL_ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": LOCAL_REGION,
        "resources": [resource],
        # Scheduler sends detail as a JSON string, EventBridge rules as an object.
        "detail": "{}" if scheduler else {},
    }


def _route_rule(route: ApiRoute, index: int) -> Rule:
    """API Gateway path syntax to werkzeug's: {id} -> <id>, {proxy+} -> <path:proxy>."""
    parts = []
    for segment in route.path.split("/"):
        if segment.startswith("{") and segment.endswith("+}"):
            parts.append(f"<path:{segment[1:-2]}>")
        elif segment.startswith("{") and segment.endswith("}"):
            parts.append(f"<{segment[1:-1]}>")
        else:
            parts.append(segment)
    methods = None if route.method == "ANY" else [route.method]
    return Rule("/".join(parts), methods=methods, endpoint=index)


class LocalFront:
    """The HTTP server in front of the functions; a WSGI app served from a daemon thread."""

    def __init__(
        self,
        backend: Backend,
        routes: Iterable[ApiRoute],
        schedules: Mapping[str, ScheduleTrigger],
        api_key: str,
        stage: str = "dev",
    ) -> None:
        self._backend = backend
        self._routes = list(routes)
        self._schedules = dict(schedules)
        self._api_key = api_key
        self._stage = stage
        self._api_map = Map(
            [_route_rule(route, index) for index, route in enumerate(self._routes)],
            strict_slashes=False,
            merge_slashes=False,
        )
        self._local_map = Map(
            [
                Rule("/_local/health", methods=["GET"], endpoint=self._health),
                Rule("/_local/queues", methods=["GET"], endpoint=self._queues),
                Rule("/_local/schedules/<function_id>", methods=["POST"], endpoint=self._schedule),
                Rule("/_local/functions/<function_id>", methods=["GET"], endpoint=self._function),
            ]
        )
        self._http = BackgroundServer(self, "front")

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        return self._http.start(port, request_handler=_RawHeadersHandler)

    @property
    def url(self) -> str:
        if self._http.url is None:
            raise RuntimeError("the front is not running")
        return self._http.url

    def stop(self) -> None:
        self._http.stop()

    # -- WSGI --------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        started = time.monotonic()
        response, function_id = self._respond(request)
        # /_local/ is polled by tests and tools; only API traffic is worth a line by default.
        level = logging.DEBUG if request.path.startswith("/_local/") else logging.INFO
        logger.log(
            level,
            "%s %s -> %s%s (%.0f ms)",
            request.method,
            request.path,
            response.status_code,
            f" {function_id}" if function_id else "",
            (time.monotonic() - started) * 1000,
        )
        return response(environ, start_response)

    def _respond(self, request: Request) -> tuple[Response, str | None]:
        if request.path.startswith("/_local/"):
            return self._respond_local(request), None
        try:
            index, values = self._api_map.bind_to_environ(request.environ).match()
        except HTTPException:
            # API Gateway REST answers an unknown resource or method this way, not with 404/405.
            return missing_token(), None
        route = self._routes[index]
        if route.api_key_required and not self._api_key_matches(request):
            return forbidden(), route.function_id
        if (request.content_length or 0) > LAMBDA_PAYLOAD_LIMIT_BYTES or len(
            request.get_data()
        ) > LAMBDA_PAYLOAD_LIMIT_BYTES:
            # Lambda refuses an invoke payload over 6 MB; say so instead of a 502 from the invoke.
            return gateway_error(413, "Request Too Long", "RequestTooLongException"), route.function_id
        return self._integrate(request, route, values), route.function_id

    def _integrate(self, request: Request, route: ApiRoute, path_values: Mapping[str, str]) -> Response:
        """The Lambda proxy integration: any failure of the function is API Gateway's 502."""
        try:
            result = self._backend.invoke(route.function_id, self._proxy_event(request, route, path_values))
            return proxy_response(result)
        except FunctionError as exc:
            logger.error("%s failed: %s", route.function_id, exc)
        except Exception:
            logger.exception("invoking %s failed", route.function_id)
        return internal_error()

    def _api_key_matches(self, request: Request) -> bool:
        given = request.headers.get("x-api-key", "")
        return hmac.compare_digest(given.encode(), self._api_key.encode())

    def _proxy_event(
        self, request: Request, route: ApiRoute, path_values: Mapping[str, str]
    ) -> dict[str, Any]:
        raw_headers: list[tuple[str, str]] = request.environ.get(RAW_HEADERS_KEY) or list(
            request.headers.items()
        )
        multi_headers: dict[str, list[str]] = {}
        for name, value in raw_headers:
            multi_headers.setdefault(name, []).append(value)
        query = request.args
        event = api_gateway_event(
            request.method,
            request.path,
            request.get_data(),
            headers={name: values[-1] for name, values in multi_headers.items()},
            query={name: values[-1] for name, values in query.lists()} or None,
            resource=route.path,
            stage=self._stage,
            api_key_id=LOCAL_API_KEY_ID if route.api_key_required else None,
            binary=route.binary_bodies,
        )
        event["multiValueHeaders"] = multi_headers
        if query:
            event["multiValueQueryStringParameters"] = {name: values for name, values in query.lists()}
        if path_values:
            event["pathParameters"] = dict(path_values)
        return event

    # -- /_local -----------------------------------------------------------------------------

    def _respond_local(self, request: Request) -> Response:
        try:
            endpoint, values = self._local_map.bind_to_environ(request.environ).match()
        except HTTPException as exc:
            return _json(
                {"message": f"{request.method} {request.path} is not a local endpoint"}, exc.code or 404
            )
        try:
            response: Response = endpoint(request, **values)
        except Exception:
            logger.exception("local endpoint %s failed", request.path)
            return _json({"message": "local endpoint failed; see the stack log"}, 500)
        return response

    def _health(self, request: Request) -> Response:
        return _json({"status": "ok"})

    def _queues(self, request: Request) -> Response:
        return _json(self._backend.queue_report())

    def _function(self, request: Request, function_id: str) -> Response:
        description = self._backend.function_description(function_id)
        if description is None:
            return _json({"message": f"template.yaml has no function {function_id}"}, 404)
        return _json(description)

    def _schedule(self, request: Request, function_id: str) -> Response:
        trigger = self._schedules.get(function_id)
        if trigger is None:
            return _json(
                {"message": f"{function_id} has no Schedule or ScheduleV2 event in template.yaml"}, 404
            )
        event = schedule_event(trigger)
        try:
            result = self._backend.invoke(function_id, event)
        except FunctionError as exc:
            logger.error("%s failed on its schedule: %s", function_id, exc)
            return _json(exc.to_json(), 502)
        return _json(result)


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")
