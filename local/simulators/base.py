"""What both HTTP simulators share: server lifecycle, request log, fault injection, JSON helpers.

A simulator is a Werkzeug WSGI app plus a thread running ``make_server`` on 127.0.0.1. Subclasses
only declare routes and handlers; everything a test needs to observe (the request log) or to break
(faults) lives here so both simulators behave identically.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from local.serving import BackgroundServer

Json = dict[str, Any]
Sleeper = Callable[[float], None]

CONTROL_PREFIX = "/_sim/"
# The fault endpoint itself is never faulted, so a test can always get back to a sane simulator.
FAULTS_PATH = "/_sim/faults"
REDACTED = "<redacted>"
# Secrets that must not leak through GET /_sim/requests (which anyone on the host can read).
SECRET_HEADERS = frozenset({"authorization", "x-api-key"})
SECRET_FORM_FIELDS = frozenset({"password", "client_secret"})
MAX_LATENCY_MS = 120_000

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised by a handler to answer an error; the simulator renders it in its own error style."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
        payload: Json | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or status_code_name(status)
        self.field = field
        self.headers = dict(headers or {})
        # Some endpoints (OAuth) have their own error shape; payload overrides the simulator's style.
        self.payload = payload


def status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # valid in a fault (400..599) but unnamed, e.g. 499
        return "Error"


def status_code_name(status: int) -> str:
    """``429 -> "TooManyRequests"``: a plausible errorCode when the real one is unknown."""
    phrase = status_phrase(status)
    return f"Http{status}" if phrase == "Error" else phrase.title().replace(" ", "").replace("-", "")


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(data), status=status, headers=dict(headers or {}), mimetype="application/json")


def read_json(request: Request) -> Any:
    """The request body as JSON, or a 400 the caller can read."""
    raw = request.get_data(cache=True)
    if not raw:
        raise ApiError(400, "Request body must be JSON", code="InvalidRequestBody")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"Request body is not valid JSON: {exc}", code="InvalidRequestBody") from exc


def read_json_object(request: Request) -> Json:
    body = read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object", code="InvalidRequestBody")
    return body


def flatten_multidict(values: MultiDict[str, str]) -> dict[str, str | list[str]]:
    """Single values stay strings; repeated keys (``status[]=a&status[]=b``) become lists."""
    return {key: items[0] if len(items) == 1 else list(items) for key, items in values.lists()}


# --------------------------------------------------------------------------------------------
# Request log


def describe_request(request: Request, raw_body: bytes, status: int) -> Json:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        lower = name.lower()
        redacted = REDACTED if lower in SECRET_HEADERS else value
        # Repeated headers are folded the way HTTP allows, so the dict stays str -> str.
        headers[lower] = f"{headers[lower]}, {redacted}" if lower in headers else redacted
    return {
        "method": request.method,
        "path": request.path,
        "query": flatten_multidict(request.args),
        "headers": headers,
        "body": _describe_body(request.mimetype, raw_body),
        "status": status,
    }


def _describe_body(mimetype: str, raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    if mimetype == "application/x-www-form-urlencoded":
        form = {key: items[0] if len(items) == 1 else items for key, items in parse_qs(text).items()}
        return {key: REDACTED if key in SECRET_FORM_FIELDS else value for key, value in form.items()}
    if mimetype == "application/json" or mimetype.endswith("+json"):
        try:
            return json.loads(text)
        except ValueError:
            return text  # log what was actually sent; the handler answers the 400
    return text


class RequestLog:
    """Append-only, thread-safe list of request descriptions; readers always get copies."""

    def __init__(self) -> None:
        self._entries: list[Json] = []
        self._lock = threading.Lock()

    def append(self, entry: Json) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self, path_prefix: str | None = None, method: str | None = None) -> list[Json]:
        with self._lock:
            selected = [
                entry
                for entry in self._entries
                if (path_prefix is None or entry["path"].startswith(path_prefix))
                and (method is None or entry["method"] == method.upper())
            ]
            return copy.deepcopy(selected)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# --------------------------------------------------------------------------------------------
# Faults


class InvalidInput(ValueError):
    """Rejected input to a control endpoint or its Python accessor; ``field`` names the culprit.

    Python callers get a plain ValueError; over HTTP the server turns it into a 400.
    """

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Fault:
    id: int
    status: int | None
    rate: float
    retry_after: int | str | None
    latency_ms: int
    path_prefix: str | None
    method: str | None
    body_contains: str | None
    count: int | None
    seed: int | None
    fired: int = 0
    # One generator per fault: a seeded fault fires on the same requests on every run.
    rng: random.Random = field(default_factory=random.Random, repr=False)

    @property
    def spent(self) -> bool:
        return self.count is not None and self.fired >= self.count

    def matches(self, method: str, path: str, body: bytes) -> bool:
        return (
            (self.path_prefix is None or path.startswith(self.path_prefix))
            and (self.method is None or method == self.method)
            and (self.body_contains is None or self.body_contains.encode() in body)
        )

    def to_json(self) -> Json:
        return {
            "id": self.id,
            "status": self.status,
            "rate": self.rate,
            "retry_after": self.retry_after,
            "latency_ms": self.latency_ms,
            "path_prefix": self.path_prefix,
            "method": self.method,
            "body_contains": self.body_contains,
            "count": self.count,
            "seed": self.seed,
            "fired": self.fired,
        }


_FAULT_FIELDS = frozenset(
    {"status", "rate", "retry_after", "latency_ms", "path_prefix", "method", "body_contains", "count", "seed"}
)


def parse_fault(spec: Any, fault_id: int) -> Fault:
    """Validate a fault specification (the JSON of POST /_sim/faults or add_fault kwargs)."""
    if not isinstance(spec, Mapping):
        raise InvalidInput(None, "fault must be a JSON object")
    unknown = sorted(set(spec) - _FAULT_FIELDS)
    if unknown:
        raise InvalidInput(unknown[0], f"unknown fault field {unknown[0]!r}")
    status = _optional_int(spec, "status", 400, 599)
    latency_ms = _optional_int(spec, "latency_ms", 0, MAX_LATENCY_MS) or 0
    if status is None and latency_ms == 0:
        raise InvalidInput("status", "status (400..599) is required unless latency_ms > 0")
    path_prefix = _optional_str(spec, "path_prefix")
    if path_prefix is not None and not path_prefix.startswith("/"):
        raise InvalidInput("path_prefix", "path_prefix must start with '/'")
    method = _optional_str(spec, "method")
    seed = _optional_int(spec, "seed", None, None)
    return Fault(
        id=fault_id,
        status=status,
        rate=_rate(spec),
        retry_after=_retry_after(spec),
        latency_ms=latency_ms,
        path_prefix=path_prefix,
        method=method.upper() if method else None,
        body_contains=_optional_str(spec, "body_contains"),
        count=_optional_int(spec, "count", 1, None),
        seed=seed,
        rng=random.Random(seed),
    )


def _optional_int(spec: Mapping[str, Any], name: str, low: int | None, high: int | None) -> int | None:
    value = spec.get(name)
    if value is None:
        return None
    # bool is an int subclass; "status": true is a client bug, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(name, f"{name} must be an integer")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = [f">= {low}"] * (low is not None) + [f"<= {high}"] * (high is not None)
        raise InvalidInput(name, f"{name} must be {' and '.join(bounds)}")
    return value


def _optional_str(spec: Mapping[str, Any], name: str) -> str | None:
    value = spec.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidInput(name, f"{name} must be a non-empty string")
    return value


def _rate(spec: Mapping[str, Any]) -> float:
    value = spec.get("rate")
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidInput("rate", "rate must be a number between 0 and 1")
    return float(value)


def _retry_after(spec: Mapping[str, Any]) -> int | str | None:
    value = spec.get("retry_after")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and (value.isdigit() or _is_http_date(value)):
        return value
    raise InvalidInput("retry_after", "retry_after must be seconds (int >= 0) or an HTTP date")


def _is_http_date(value: str) -> bool:
    try:
        parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return True


class FaultInjector:
    """Active faults, first match wins. Thread-safe: the server answers requests concurrently."""

    def __init__(self, protected_prefixes: Iterable[str]) -> None:
        self._protected = tuple(protected_prefixes)
        self._faults: list[Fault] = []
        self._next_id = 1
        self._lock = threading.Lock()

    def add(self, spec: Any) -> Fault:
        with self._lock:
            fault = parse_fault(spec, self._next_id)
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def describe(self) -> list[Json]:
        with self._lock:
            return [fault.to_json() for fault in self._faults]

    def pick(self, method: str, path: str, body: bytes) -> Fault | None:
        """The fault to apply to this request, if any; counts it as fired."""
        with self._lock:
            fault = next((f for f in self._faults if self._applies(f, method, path, body)), None)
            # The first matching fault decides alone: its rate miss means "no fault", which keeps a
            # seeded sequence independent of whatever other faults are active.
            if fault is None or fault.rng.random() >= fault.rate:
                return None
            fault.fired += 1
            return fault

    def _applies(self, fault: Fault, method: str, path: str, body: bytes) -> bool:
        return not fault.spent and fault.matches(method, path, body) and self._reaches(fault, path)

    def _reaches(self, fault: Fault, path: str) -> bool:
        # Control and auth/discovery paths stay healthy under a broad fault (otherwise a "fail every
        # call" fault would also break token fetches and the test's own control calls); they are
        # faulted only when the fault's path_prefix points into them, e.g. "/auth/token".
        for prefix in self._protected:
            if path.startswith(prefix):
                return fault.path_prefix is not None and fault.path_prefix.startswith(prefix.rstrip("/"))
        return True


# --------------------------------------------------------------------------------------------
# Server


class _QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug prints one line per request; unit tests read the request log instead."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class SimulatorServer:
    """A WSGI app served on 127.0.0.1 from a daemon thread, with a request log and fault injection.

    Subclasses implement ``routes()`` and may override ``authorize()`` and ``error_payload()``.
    Handlers run under ``self._lock``, so they can mutate simulator state without further locking.
    """

    # Paths a broad fault never reaches (see FaultInjector._reaches).
    protected_prefixes: ClassVar[tuple[str, ...]] = (CONTROL_PREFIX,)
    converters: ClassVar[Mapping[str, type[BaseConverter]]] = {}

    def __init__(self, *, sleeper: Sleeper = time.sleep) -> None:
        self._sleeper = sleeper
        self._lock = threading.RLock()
        self._log = RequestLog()
        self._faults = FaultInjector(self.protected_prefixes)
        self._url_map = Map(
            [*self._control_rules(), *self.routes()],
            converters=dict(self.converters),
            # Answer "//" with a 404 instead of a redirect: a client bug should fail, not be repaired.
            merge_slashes=False,
        )
        self._http = BackgroundServer(self, type(self).__name__)

    # -- subclass hooks ----------------------------------------------------------------------

    def routes(self) -> list[Rule]:
        """Werkzeug rules whose endpoints are handlers ``(request, **url_values) -> Response``."""
        raise NotImplementedError

    def authorize(self, request: Request) -> None:
        """Raise ApiError to reject a non-control request. Runs after routing, under the lock."""
        return None

    def describe_caller(self, request: Request) -> Json:
        """What the request log adds about who sent a request (the CXone simulator: which
        client's token it carried); nothing by default."""
        return {}

    def error_payload(self, status: int, message: str, code: str, field: str | None) -> Json:
        """CXone's error shape; the ticketing simulator overrides it with its own."""
        return {"errors": [{"field": field, "message": message, "errorCode": code}], "uid": str(uuid.uuid4())}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, port: int = 0, *, host: str = "127.0.0.1", log_requests: bool = False) -> str:
        return self._http.start(port, host, None if log_requests else _QuietRequestHandler)

    def stop(self) -> None:
        self._http.stop()

    @property
    def _url(self) -> str | None:
        return self._http.url

    @property
    def url(self) -> str:
        if self._http.url is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() first")
        return self._http.url

    def __enter__(self) -> Self:
        if not self._http.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- request log and faults (Python side of /_sim/requests and /_sim/faults) ---------------

    def requests(self, path_prefix: str | None = None, method: str | None = None) -> list[Json]:
        return self._log.entries(path_prefix, method)

    def clear_requests(self) -> None:
        self._log.clear()

    def add_fault(self, **fields: Any) -> Json:
        """Same fields as POST /_sim/faults; raises InvalidInput (a ValueError) on bad input."""
        return self._faults.add(fields).to_json()

    def faults(self) -> list[Json]:
        return self._faults.describe()

    def clear_faults(self) -> None:
        self._faults.clear()

    # -- WSGI --------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self._respond(request)
        return response(environ, start_response)

    def _respond(self, request: Request) -> Response:
        raw_body = request.get_data(cache=True)
        fault = None
        if request.path != FAULTS_PATH:
            fault = self._faults.pick(request.method, request.path, raw_body)
        if fault is not None and fault.latency_ms:
            # Outside the state lock: a slow request must not stall the others.
            self._sleeper(fault.latency_ms / 1000)
        if fault is not None and fault.status is not None:
            response = self._fault_response(fault)  # the request has no effect
        else:
            response = self._dispatch(request)
        if not request.path.startswith(CONTROL_PREFIX):
            self._log.append(
                describe_request(request, raw_body, response.status_code) | self.describe_caller(request)
            )
        return response

    def _dispatch(self, request: Request) -> Response:
        try:
            endpoint, values = self._url_map.bind_to_environ(request.environ).match()
            with self._lock:
                if not request.path.startswith(CONTROL_PREFIX):
                    self.authorize(request)
                response: Response = endpoint(request, **values)
                return response
        except ApiError as error:
            return self._error_response(error)
        except InvalidInput as error:
            return self._error_response(ApiError(400, str(error), code="InvalidInput", field=error.field))
        except MethodNotAllowed as error:
            allowed = ", ".join(sorted(error.valid_methods or ()))
            message = f"{request.method} is not allowed on {request.path}"
            return self._error_response(ApiError(405, message, headers={"Allow": allowed}))
        except HTTPException as error:
            status = error.code or 500
            return self._error_response(ApiError(status, f"{error.name}: {request.method} {request.path}"))
        except Exception:
            logger.exception("simulator handler failed for %s %s", request.method, request.path)
            return self._error_response(ApiError(500, "Simulator internal error"))

    def _error_response(self, error: ApiError) -> Response:
        payload = error.payload or self.error_payload(error.status, error.message, error.code, error.field)
        return json_response(payload, error.status, error.headers)

    def _fault_response(self, fault: Fault) -> Response:
        status = fault.status or 500
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        error = ApiError(status, f"Simulated fault: {status_phrase(status)}", headers=headers)
        return self._error_response(error)

    # -- control endpoints shared by every simulator -----------------------------------------

    def _control_rules(self) -> list[Rule]:
        return [
            Rule("/_sim/requests", methods=["GET"], endpoint=self._get_requests),
            Rule("/_sim/requests", methods=["DELETE"], endpoint=self._delete_requests),
            Rule("/_sim/faults", methods=["GET"], endpoint=self._get_faults),
            Rule("/_sim/faults", methods=["POST"], endpoint=self._post_fault),
            Rule("/_sim/faults", methods=["DELETE"], endpoint=self._delete_faults),
        ]

    def _get_requests(self, request: Request) -> Response:
        return json_response(self.requests(request.args.get("path_prefix"), request.args.get("method")))

    def _delete_requests(self, request: Request) -> Response:
        self.clear_requests()
        return Response(status=204)

    def _get_faults(self, request: Request) -> Response:
        return json_response(self.faults())

    def _post_fault(self, request: Request) -> Response:
        return json_response(self._faults.add(read_json(request)).to_json(), 201)

    def _delete_faults(self, request: Request) -> Response:
        self.clear_faults()
        return Response(status=204)
