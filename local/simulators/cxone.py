"""CXone simulator: OAuth and discovery, DFO 3.0 digital API, Admin API DNC records, Agent API DTMF.

It answers on the paths the real platform uses (as far as they are publicly documented), keeps what
took effect so tests can assert on it (``state()``), and enforces what the real API enforces that a
client could get wrong: credentials, bearer tokens and their expiry, required fields, de-duplication.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from werkzeug.datastructures import MultiDict
from werkzeug.routing import BaseConverter, Rule
from werkzeug.wrappers import Request, Response

from local.simulators.base import (
    CONTROL_PREFIX,
    ApiError,
    InvalidInput,
    Json,
    SimulatorServer,
    Sleeper,
    json_response,
    read_json,
    read_json_object,
)

DEFAULT_CREDENTIALS: Mapping[str, str] = {
    "client_id": "relay-client",
    "client_secret": "relay-secret",
    "access_key_id": "relay-access-key",
    "access_key_secret": "relay-access-secret",
}
AREA = "na1"
DOMAIN = "niceincontact.com"
BUSINESS_UNIT_ID = 4600001
CLUSTER_ID = "SIM1"
ISSUED_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN, not a secret

# Reachable without a bearer token, and spared by broad faults (see FaultInjector._reaches).
PUBLIC_PREFIXES = ("/.well-known/", "/auth/")
DFO = "/dfo/3.0"
# Admin and Agent APIs accept any version (v23.0, v32.0, ...): deployments pin different ones.
IN_CONTACT_API = "/inContactAPI/services/<apiver:version>"
DNC_RECORDS = f"{IN_CONTACT_API}/dnc-groups/<group_id>/records"

INBOUND_REQUIRED = (
    "idOnExternalPlatform",
    "thread.idOnExternalPlatform",
    "messageContent.type",
    "messageContent.payload.text",
    "direction",
)
OUTBOUND_REQUIRED = ("thread.idOnExternalPlatform", "messageContent.payload.text")
DELIVERY_STATUSES = ("delivered", "seen", "failed")
# Practitioners report the DNC API wants digits only; E.164 allows at most 15.
DNC_PHONE = re.compile(r"[0-9]{7,15}")
# List filter name -> the field of a served item it matches. CXone spells them status[]=a, and
# contactId[] is the relay's undocumented reading (see its endpoints module).
CONTACT_FILTERS = {"status": "status", "channel": "channelId", "routingQueueId": "routingQueueId"}
MESSAGE_FILTERS = {"channel": "channelId", "direction": "direction", "contactId": "contactId"}
# The listing's date window (date[from]/date[to], day resolution) is read as applying to updatedAt.
DATE_FILTERED_FIELD = "updatedAt"
SORTABLE_FIELDS = ("createdAt", "updatedAt")
SORTING_TYPES = ("asc", "desc")


Selector = Callable[[MultiDict[str, str]], list[Json]]


class ApiVersionConverter(BaseConverter):
    regex = r"v\d+\.\d+"


@dataclass(frozen=True)
class _Scroll:
    """Server-side cursor behind an opaque scrollToken: what the first page selected, and an offset.
    Like an Elasticsearch scroll, a scroll is a snapshot: changes after its first page do not move
    items in or out of it (a contact updated meanwhile shows in the next scroll)."""

    kind: str
    items: list[Json]
    offset: int


class CxoneSimulator(SimulatorServer):
    protected_prefixes: ClassVar[tuple[str, ...]] = (CONTROL_PREFIX, *PUBLIC_PREFIXES)
    converters: ClassVar[Mapping[str, type[BaseConverter]]] = {"apiver": ApiVersionConverter}

    def __init__(
        self,
        credentials: Mapping[str, str] | Sequence[Mapping[str, str]] | None = None,
        token_ttl_seconds: int = 3600,
        tenant_id: str = "sim-tenant",
        page_size: int = 50,
        clock: Callable[[], float] = time.time,
        *,
        sleeper: Sleeper = time.sleep,
    ) -> None:
        super().__init__(sleeper=sleeper)
        # Several credential sets: one per CXone environment (tenant or business unit) the relay
        # is configured with. A partial dict overrides only what it names, so a test can change
        # just the secret. The first set is `credentials`.
        sets = [credentials] if credentials is None or isinstance(credentials, Mapping) else list(credentials)
        if not sets:
            raise InvalidInput("credentials", "credentials must name at least one credential set")
        self.credential_sets = [{**DEFAULT_CREDENTIALS, **(given or {})} for given in sets]
        client_ids = [accepted["client_id"] for accepted in self.credential_sets]
        if len(set(client_ids)) != len(client_ids):
            raise InvalidInput("credentials", "each credential set needs its own client_id")
        self.credentials = self.credential_sets[0]
        self.token_ttl_seconds = token_ttl_seconds
        self.tenant_id = tenant_id
        self._clock = clock
        self._page_size = _positive_int(page_size, "page_size")
        # Tokens survive reset_state(): a client holding a cached token keeps working between tests.
        self._access_tokens: dict[str, float] = {}
        self._token_clients: dict[str, str] = {}  # access token -> the client_id it was issued to
        self._refresh_tokens: set[str] = set()
        self._reset_state()

    def _reset_state(self) -> None:
        self._messages: dict[str, list[Json]] = {}
        self._message_replies: dict[tuple[str, str], Json] = {}
        self._outbound: list[Json] = []
        self._statuses: list[Json] = []
        self._dnc: dict[str, set[str]] = {}
        # (group id or None for any group, phone digits) -> [error, failures left (None: always)].
        self._dnc_failures: dict[tuple[str | None, str], list[Any]] = {}
        self._dtmf: list[Json] = []
        self._idempotent_replies: dict[tuple[str, str, str], tuple[int, Json]] = {}
        self._contacts: list[Json] = []
        self._agent_sessions: set[str] = set()
        self._scrolls: dict[str, _Scroll] = {}
        self._tokens_issued = 0

    # -- Python accessors --------------------------------------------------------------------

    def state(self) -> Json:
        """What took effect (the same document as GET /_sim/state)."""
        with self._lock:
            return copy.deepcopy(
                {
                    "messages": self._messages,
                    "outbound": self._outbound,
                    "statuses": self._statuses,
                    "dnc": {group: sorted(phones) for group, phones in self._dnc.items()},
                    "dtmf": self._dtmf,
                    "tokens_issued": self._tokens_issued,
                }
            )

    def reset_state(self) -> None:
        """Forget stored effects, loaded contacts and sessions; credentials and live tokens stay."""
        with self._lock:
            self._reset_state()

    def expire_tokens(self) -> int:
        """Revoke every access token issued so far (refresh tokens stay usable); returns how many."""
        with self._lock:
            revoked = len(self._access_tokens)
            self._access_tokens.clear()
            self._token_clients.clear()
            return revoked

    def issue_token(self) -> str:
        """A valid access token without an HTTP round trip, for tests of code that only calls APIs."""
        with self._lock:
            return str(self._issue_tokens(self._url or "http://127.0.0.1", self.credentials)["access_token"])

    def fail_dnc_records(
        self, phones: Iterable[str], error: str, count: int | None = None, group_id: str | None = None
    ) -> None:
        """Answer these numbers' DNC records (digits, as sent) with `error` in an HTTP 200, the
        next `count` times each (every time when None), in one group or in any, as the Admin API
        reports failed records."""
        numbers = list(phones)
        if not numbers or not all(isinstance(phone, str) and DNC_PHONE.fullmatch(phone) for phone in numbers):
            raise InvalidInput("phones", "phones must be a non-empty list of 7 to 15 digits each")
        if not isinstance(error, str) or not error:
            raise InvalidInput("error", "error must be a non-empty string")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise InvalidInput("count", "count must be an integer >= 1")
        if group_id is not None and (not isinstance(group_id, str) or not group_id):
            raise InvalidInput("group_id", "group_id must be a non-empty string")
        with self._lock:
            for phone in numbers:
                self._dnc_failures[(group_id, phone)] = [error, count]

    def load_contacts(self, contacts: Iterable[Json]) -> None:
        """Replace what GET /dfo/3.0/contacts and /messages serve."""
        loaded = list(contacts)
        for index, contact in enumerate(loaded):
            if not isinstance(contact, dict) or "id" not in contact:
                raise InvalidInput(f"[{index}].id", f"contact [{index}] must be an object with an id")
        with self._lock:
            self._contacts = copy.deepcopy(loaded)
            self._scrolls.clear()  # old cursors point into the previous set

    def set_page_size(self, page_size: int) -> None:
        with self._lock:
            self._page_size = _positive_int(page_size, "page_size")

    def add_agent_sessions(self, session_ids: Iterable[str | int]) -> None:
        """Declare live agent sessions; send-dtmf answers 404 for any other session id."""
        ids = list(session_ids)
        if not ids or any(isinstance(s, bool) or not isinstance(s, str | int) for s in ids):
            raise InvalidInput("session_ids", "session_ids must be a non-empty list of ids")
        with self._lock:
            self._agent_sessions.update(str(s) for s in ids)

    # -- routing and auth --------------------------------------------------------------------

    def routes(self) -> list[Rule]:
        return [
            Rule("/.well-known/openid-configuration", methods=["GET"], endpoint=self._openid_configuration),
            Rule("/.well-known/jwks", methods=["GET"], endpoint=self._jwks),
            Rule("/.well-known/cxone-configuration", methods=["GET"], endpoint=self._cxone_configuration),
            Rule("/auth/token", methods=["POST"], endpoint=self._token),
            Rule(f"{DFO}/channels/<channel_id>/messages", methods=["POST"], endpoint=self._store_message),
            Rule(f"{DFO}/channels/<channel_id>/outbound", methods=["POST"], endpoint=self._send_outbound),
            Rule(
                f"{DFO}/channels/<channel_id>/messages/<message_id>/status",
                methods=["PUT"],
                endpoint=self._update_status,
            ),
            Rule(f"{DFO}/contacts", methods=["GET"], endpoint=self._list_contacts),
            Rule(f"{DFO}/messages", methods=["GET"], endpoint=self._list_messages),
            Rule(f"{IN_CONTACT_API}/dnc-groups/search", methods=["POST"], endpoint=self._dnc_search),
            Rule(DNC_RECORDS, methods=["POST"], endpoint=self._dnc_add),
            Rule(DNC_RECORDS, methods=["DELETE"], endpoint=self._dnc_remove),
            Rule(
                f"{IN_CONTACT_API}/agent-sessions/<session_id>/send-dtmf",
                methods=["POST"],
                endpoint=self._send_dtmf,
            ),
            Rule("/_sim/contacts", methods=["POST"], endpoint=self._post_contacts),
            Rule("/_sim/page-size", methods=["POST"], endpoint=self._post_page_size),
            Rule("/_sim/agent-sessions", methods=["POST"], endpoint=self._post_agent_sessions),
            Rule("/_sim/dnc-failures", methods=["POST"], endpoint=self._post_dnc_failures),
            Rule("/_sim/tokens/expire", methods=["POST"], endpoint=self._post_expire_tokens),
            Rule("/_sim/state", methods=["GET"], endpoint=self._get_state),
            Rule("/_sim/state", methods=["DELETE"], endpoint=self._delete_state),
        ]

    def authorize(self, request: Request) -> None:
        if request.path.startswith(PUBLIC_PREFIXES):
            return
        auth = request.authorization
        token = auth.token if auth is not None and auth.type == "bearer" else None
        expires_at = self._access_tokens.get(token) if token else None
        if expires_at is None or self._clock() >= expires_at:
            raise ApiError(
                401,
                "Access token is missing, invalid, expired or revoked",
                code="InvalidToken",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )

    def describe_caller(self, request: Request) -> Json:
        """The client a bearer token was issued to, so a test can tell which environment's
        credentials a call used."""
        auth = request.authorization
        token = auth.token if auth is not None and auth.type == "bearer" else None
        client_id = self._token_clients.get(token) if token else None
        return {"client_id": client_id} if client_id else {}

    # -- discovery and OAuth -----------------------------------------------------------------

    def _openid_configuration(self, request: Request) -> Response:
        base = _base_url(request)
        return json_response(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/auth/authorize",
                "token_endpoint": f"{base}/auth/token",
                "jwks_uri": f"{base}/.well-known/jwks",
                "grant_types_supported": ["password", "client_credentials", "refresh_token"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "id_token_signing_alg_values_supported": ["none"],
            }
        )

    def _jwks(self, request: Request) -> Response:
        return json_response({"keys": []})  # id_tokens are unsigned, so there is nothing to publish

    def _cxone_configuration(self, request: Request) -> Response:
        tenant_id = request.args.get("tenantId")
        if not tenant_id:
            raise ApiError(400, "tenantId is required", field="tenantId")
        if tenant_id != self.tenant_id:
            raise ApiError(404, f"Unknown tenant {tenant_id}", code="TenantNotFound", field="tenantId")
        base = _base_url(request)
        return json_response(
            {
                "private": False,
                "area": AREA,
                "domain": DOMAIN,
                "api_endpoint": base,
                "ui_endpoint": base,
                "auth_endpoint": base,
                "tenantId": tenant_id,
            }
        )

    def _token(self, request: Request) -> Response:
        auth = request.authorization
        client = next(
            (
                accepted
                for accepted in self.credential_sets
                if auth is not None
                and auth.type == "basic"
                and auth.username == accepted["client_id"]
                and auth.password == accepted["client_secret"]
            ),
            None,
        )
        if client is None:
            raise _oauth_error(401, "invalid_client", "client authentication failed (HTTP Basic)")
        form = request.form
        grant_type = form.get("grant_type")
        if grant_type == "password":
            if (form.get("username"), form.get("password")) != (
                client["access_key_id"],
                client["access_key_secret"],
            ):
                raise _oauth_error(400, "invalid_grant", "access key id or secret is wrong")
        elif grant_type == "refresh_token":
            if form.get("refresh_token") not in self._refresh_tokens:
                raise _oauth_error(400, "invalid_grant", "refresh_token is unknown")
        elif grant_type != "client_credentials":
            raise _oauth_error(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        tokens = self._issue_tokens(request.host_url, client)
        return json_response(tokens, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _issue_tokens(self, host_url: str, client: Mapping[str, str]) -> Json:
        now = self._clock()
        access_token = secrets.token_urlsafe(32)
        refresh_token = secrets.token_urlsafe(32)
        self._access_tokens[access_token] = now + self.token_ttl_seconds
        self._token_clients[access_token] = client["client_id"]
        self._refresh_tokens.add(refresh_token)
        self._tokens_issued += 1
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.token_ttl_seconds,
            "refresh_token": refresh_token,
            "id_token": self._id_token(host_url.rstrip("/"), now, client),
            "issued_token_type": ISSUED_TOKEN_TYPE,
        }

    def _id_token(self, issuer: str, now: float, client: Mapping[str, str]) -> str:
        # JWT-shaped but unsigned: clients read tenantId from it and must not need a key to do so.
        claims = {
            "iss": issuer,
            "aud": client["client_id"],
            "sub": f"user:{client['access_key_id']}",
            "iat": int(now),
            "exp": int(now + self.token_ttl_seconds),
            "tenantId": self.tenant_id,
            "icBUId": BUSINESS_UNIT_ID,
            "icClusterId": CLUSTER_ID,
        }
        header = {"alg": "none", "typ": "JWT"}
        return ".".join([_b64url_json(header), _b64url_json(claims), _b64url(b"unsigned")])

    # -- DFO 3.0 -----------------------------------------------------------------------------

    def _store_message(self, request: Request, channel_id: str) -> Response:
        body = read_json_object(request)
        for path in INBOUND_REQUIRED:
            require(body, path)
        key = (channel_id, str(body["idOnExternalPlatform"]))
        # DFO de-duplicates on the external id: a second store of it is refused, whatever
        # Idempotency-Key it carries (see DFO_DUPLICATE_MESSAGE_STATUS in the relay's endpoints).
        if key in self._message_replies:
            raise ApiError(
                409,
                f"Message {key[1]} already exists on channel {channel_id}",
                code="MessageAlreadyExists",
                field="idOnExternalPlatform",
            )
        reply = {
            "id": _new_id(),
            "idOnExternalPlatform": body["idOnExternalPlatform"],
            "threadIdOnExternalPlatform": body["thread"]["idOnExternalPlatform"],
            "createdAt": self._now_iso(),
        }
        self._message_replies[key] = reply
        stored = {**body, "id": reply["id"], "channelId": channel_id, "createdAt": reply["createdAt"]}
        self._messages.setdefault(channel_id, []).append(stored)
        return json_response(reply, 201)

    def _send_outbound(self, request: Request, channel_id: str) -> Response:
        body = read_json_object(request)
        for path in OUTBOUND_REQUIRED:
            require(body, path)
        _require_recipients(body)
        return self._idempotent(request, lambda: (201, self._record_outbound(channel_id, body)))

    def _record_outbound(self, channel_id: str, body: Json) -> Json:
        reply = {"id": _new_id(), "idOnExternalPlatform": f"sim-out-{uuid.uuid4().hex}", "status": "sent"}
        self._outbound.append({**body, **reply, "channelId": channel_id, "createdAt": self._now_iso()})
        return reply

    def _update_status(self, request: Request, channel_id: str, message_id: str) -> Response:
        body = read_json_object(request)
        status = body.get("status")
        if not isinstance(status, str) or status not in DELIVERY_STATUSES:
            raise ApiError(400, f"status must be one of {', '.join(DELIVERY_STATUSES)}", field="status")
        entry = {
            "channelId": channel_id,
            "idOnExternalPlatform": message_id,
            "status": status,
            "updatedAt": require(body, "updatedAt"),
            "reason": body.get("reason"),
        }
        self._statuses.append(entry)
        return json_response(entry)

    def _list_contacts(self, request: Request) -> Response:
        return self._page(request, "contacts", self._select_contacts)

    def _list_messages(self, request: Request) -> Response:
        return self._page(request, "messages", self._select_messages)

    def _select_contacts(self, filters: MultiDict[str, str]) -> list[Json]:
        window = _date_window(filters)
        contacts = [_dfo_contact(contact) for contact in self._contacts]
        selected = [
            c
            for c in contacts
            if _matches_filters(c, filters, CONTACT_FILTERS) and _in_date_window(c, window)
        ]
        return _sorted(selected, filters)

    def _select_messages(self, filters: MultiDict[str, str]) -> list[Json]:
        messages = [
            _dfo_message(contact, message)
            for contact in self._contacts
            for message in contact.get("messages") or []
        ]
        return [m for m in messages if _matches_filters(m, filters, MESSAGE_FILTERS)]

    def _page(self, request: Request, kind: str, select: Selector) -> Response:
        token = request.args.get("scrollToken")
        if token:
            scroll = self._scrolls.get(token)
            if scroll is None or scroll.kind != kind:
                raise ApiError(400, "scrollToken is invalid or expired", field="scrollToken")
            # Like the real API, a scroll keeps the filters (and here the items) of its first page.
            items, offset = scroll.items, scroll.offset
        else:
            items, offset = select(MultiDict(request.args)), 0
        page = items[offset : offset + self._page_size]
        next_offset = offset + len(page)
        next_token = ""
        if next_offset < len(items):
            next_token = secrets.token_urlsafe(16)
            self._scrolls[next_token] = _Scroll(kind, items, next_offset)
        return json_response({"hits": len(items), "scrollToken": next_token, "data": copy.deepcopy(page)})

    # -- Admin API: DNC ----------------------------------------------------------------------

    def _dnc_add(self, request: Request, version: str, group_id: str) -> Response:
        records = _dnc_records(request)
        group = self._dnc.setdefault(group_id, set())
        return self._idempotent(
            request,
            lambda: (200, _apply_dnc(records, group.add, lambda phone: self._dnc_failure(group_id, phone))),
        )

    def _dnc_failure(self, group_id: str, phone: str) -> str | None:
        """The error an injected failure gives this number's record in this group now, if any."""
        key = (group_id, phone) if (group_id, phone) in self._dnc_failures else (None, phone)
        failure = self._dnc_failures.get(key)
        if failure is None:
            return None
        error, left = failure
        if left is not None:
            if left <= 1:
                del self._dnc_failures[key]
            else:
                failure[1] = left - 1
        return str(error)

    def _dnc_remove(self, request: Request, version: str, group_id: str) -> Response:
        records = _dnc_records(request)
        group = self._dnc.get(group_id, set())
        # Removing an absent number succeeds: a retried DELETE must not report a failure.
        return self._idempotent(request, lambda: (200, _apply_dnc(records, group.discard)))

    def _dnc_search(self, request: Request, version: str) -> Response:
        phone = request.args.get("phoneNumber")
        if not phone:
            raise ApiError(400, "phoneNumber is required", field="phoneNumber")
        groups = sorted(group for group, phones in self._dnc.items() if phone in phones)
        records = [{"dncGroupId": group, "phoneNumber": phone} for group in groups]
        return json_response({"resultSet": {"found": bool(groups), "dncGroupRecords": records}})

    # -- Agent API: DTMF ---------------------------------------------------------------------

    def _send_dtmf(self, request: Request, version: str, session_id: str) -> Response:
        if session_id not in self._agent_sessions:
            raise ApiError(404, f"Agent session {session_id} was not found", code="SessionNotFound")
        self._dtmf.append({"sessionId": session_id, **_dtmf_params(request)})
        return Response(status=202)

    # -- shared behaviour --------------------------------------------------------------------

    def _idempotent(self, request: Request, perform: Callable[[], tuple[int, Json]]) -> Response:
        """Run ``perform`` once per Idempotency-Key (per method and path) and replay its answer."""
        key = request.headers.get("Idempotency-Key")
        if not key:
            status, body = perform()
            return json_response(body, status)
        scope = (request.method, request.path, key)
        replayed = scope in self._idempotent_replies
        if not replayed:
            self._idempotent_replies[scope] = perform()
        status, body = self._idempotent_replies[scope]
        return json_response(body, status, {"Idempotent-Replayed": str(replayed).lower()})

    def _now_iso(self) -> str:
        moment = datetime.fromtimestamp(self._clock(), UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    # -- control endpoints -------------------------------------------------------------------

    def _post_contacts(self, request: Request) -> Response:
        contacts = read_json(request)
        if not isinstance(contacts, list):
            raise InvalidInput(None, "body must be a JSON array of contacts")
        self.load_contacts(contacts)
        return json_response({"loaded": len(contacts)})

    def _post_page_size(self, request: Request) -> Response:
        self.set_page_size(read_json_object(request).get("page_size", 0))
        return json_response({"page_size": self._page_size})

    def _post_dnc_failures(self, request: Request) -> Response:
        body = read_json_object(request)
        phones = body.get("phones")
        if not isinstance(phones, list):
            raise InvalidInput("phones", "phones must be a non-empty list of 7 to 15 digits each")
        self.fail_dnc_records(phones, body.get("error"), body.get("count"), body.get("group_id"))  # type: ignore[arg-type]
        return json_response({"failing": len(phones)})

    def _post_agent_sessions(self, request: Request) -> Response:
        session_ids = read_json_object(request).get("session_ids")
        if not isinstance(session_ids, list):
            raise InvalidInput("session_ids", "session_ids must be a non-empty list of ids")
        self.add_agent_sessions(session_ids)
        return json_response({"session_ids": sorted(self._agent_sessions)})

    def _post_expire_tokens(self, request: Request) -> Response:
        return json_response({"revoked": self.expire_tokens()})

    def _get_state(self, request: Request) -> Response:
        return json_response(self.state())

    def _delete_state(self, request: Request) -> Response:
        self.reset_state()
        return Response(status=204)


# -- request validation helpers --------------------------------------------------------------


def require(body: Json, path: str) -> Any:
    """The value at a dotted path; a 400 naming the path when it is missing or empty."""
    value: Any = body
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None or value in ("", [], {}):
        raise ApiError(400, f"{path} is required", code="RequiredFieldMissing", field=path)
    return value


def _require_recipients(body: Json) -> None:
    recipients = body.get("recipients")
    if not isinstance(recipients, list) or not recipients:
        message = "recipients must be a non-empty array"
        raise ApiError(400, message, code="RequiredFieldMissing", field="recipients")
    for index, recipient in enumerate(recipients):
        if not isinstance(recipient, dict) or not recipient.get("idOnExternalPlatform"):
            field = f"recipients[{index}].idOnExternalPlatform"
            raise ApiError(400, f"{field} is required", code="RequiredFieldMissing", field=field)


def _dnc_records(request: Request) -> list[Any]:
    records = read_json_object(request).get("dncGroupRecords")
    if not isinstance(records, list) or not records:
        raise ApiError(400, "dncGroupRecords must be a non-empty array", field="dncGroupRecords")
    return records


def _apply_dnc(
    records: list[Any], apply: Callable[[str], None], failure: Callable[[str], str | None] = lambda _: None
) -> Json:
    """Per-record results: a bad number fails alone and the HTTP status stays 200, as on the real API."""
    results = [_apply_dnc_record(record, apply, failure) for record in records]
    error_count = sum(not result["success"] for result in results)
    return {"resultSet": {"errorCount": error_count, "recordResults": results}}


def _apply_dnc_record(
    record: Any, apply: Callable[[str], None], failure: Callable[[str], str | None]
) -> Json:
    phone = record.get("phoneNumber") if isinstance(record, dict) else None
    if not isinstance(phone, str) or not DNC_PHONE.fullmatch(phone):
        error = f"Invalid phoneNumber {phone!r}: expected 7 to 15 digits"
        return {"success": False, "error": error, "formattedPhone": None}
    injected = failure(phone)
    if injected is not None:
        return {"success": False, "error": injected, "formattedPhone": phone}
    apply(phone)
    return {"success": True, "error": None, "formattedPhone": phone}


def _dtmf_params(request: Request) -> Json:
    # NICE's SDK sends a JSON body while the generated client sends query parameters: accept both.
    params: dict[str, Any] = request.args.to_dict()
    if request.get_data(cache=True):
        params.update(read_json_object(request))
    sequence = params.get("dtmfSequence")
    if not isinstance(sequence, str) or not sequence:
        raise ApiError(400, "dtmfSequence is required", code="RequiredFieldMissing", field="dtmfSequence")
    return {
        "dtmfSequence": sequence,
        "toneDurationMS": _int_param(params, "toneDurationMS", required=True),
        "toneSpacingMS": _int_param(params, "toneSpacingMS", required=False),
    }


def _int_param(params: Mapping[str, Any], name: str, *, required: bool) -> int | None:
    value = params.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"{name} is required", code="RequiredFieldMissing", field=name)
        return None
    # Query parameters arrive as strings; JSON bodies as numbers.
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiError(400, f"{name} must be a non-negative integer", field=name)
    return value


def _matches_filters(item: Json, filters: MultiDict[str, str], fields: Mapping[str, str]) -> bool:
    for name, field in fields.items():
        # CXone spells list filters status[]=a&status[]=b; accept the bare name too.
        wanted = filters.getlist(f"{name}[]") + filters.getlist(name)
        if wanted and str(item.get(field)) not in wanted:
            return False
    return True


def _dfo_contact(contact: Json) -> Json:
    """A loaded contact ({id, channel, status, subject, body, createdAt, updatedAt, messages}) as a
    DFO listing serves a case. subject and body are not in NICE's published case schema; they are
    served as loaded, with anything else the contact was loaded with."""
    messages = [m for m in contact.get("messages") or [] if isinstance(m, dict)]
    texts = [_message_text(m) for m in messages]
    latest = next((text for text in reversed(texts) if text), None)
    served = {key: value for key, value in contact.items() if key not in ("messages", "channel")}
    return served | {
        "id": contact["id"],
        "threadId": contact.get("threadId", f"thread-{contact['id']}"),
        "status": contact.get("status", "new"),
        "direction": "inbound",
        "channelId": contact.get("channel"),
        "createdAt": contact.get("createdAt"),
        "updatedAt": contact.get("updatedAt", contact.get("createdAt")),
        "statusUpdatedAt": contact.get("updatedAt", contact.get("createdAt")),
        "preview": latest if latest is not None else contact.get("body"),
    }


def _dfo_message(contact: Json, message: Json) -> Json:
    return message | {
        "contactId": contact["id"],
        "threadId": contact.get("threadId", f"thread-{contact['id']}"),
        "channelId": contact.get("channel"),
    }


def _message_text(message: Json) -> str | None:
    content = message.get("messageContent")
    payload = content.get("payload") if isinstance(content, dict) else None
    text = payload.get("text") if isinstance(payload, dict) else None
    return text if isinstance(text, str) else None


def _moment(value: Any) -> datetime | None:
    """An ISO 8601 time as aware UTC (naive times are UTC); None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _date_window(filters: MultiDict[str, str]) -> tuple[date | None, date | None]:
    """date[from]/date[to] as NICE's SDK sends them: YYYY-MM-DD, both ends inclusive."""
    window: list[date | None] = []
    for name in ("date[from]", "date[to]"):
        value = filters.get(name)
        if value is None:
            window.append(None)
            continue
        try:
            window.append(datetime.strptime(value, "%Y-%m-%d").date())
        except ValueError:
            raise ApiError(400, f"{name} must be a date, YYYY-MM-DD", field=name) from None
    return window[0], window[1]


def _in_date_window(item: Json, window: tuple[date | None, date | None]) -> bool:
    start, end = window
    if start is None and end is None:
        return True
    moment = _moment(item.get(DATE_FILTERED_FIELD))
    if moment is None:
        return False
    day = moment.date()
    return (start is None or day >= start) and (end is None or day <= end)


def _sorted(items: list[Json], filters: MultiDict[str, str]) -> list[Json]:
    field = filters.get("sorting")
    if field is None:
        return items
    if field not in SORTABLE_FIELDS:
        raise ApiError(400, f"sorting must be one of {', '.join(SORTABLE_FIELDS)}", field="sorting")
    order = filters.get("sortingType", "asc")
    if order not in SORTING_TYPES:
        raise ApiError(400, "sortingType must be asc or desc", field="sortingType")
    # Unreadable times sort first; equal times keep their loaded order (a stable sort).
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(items, key=lambda item: _moment(item.get(field)) or epoch, reverse=order == "desc")


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(name, f"{name} must be an integer >= 1")
    return value


def _base_url(request: Request) -> str:
    # Built from the Host header so discovery points wherever the client reached us (host or container).
    return request.host_url.rstrip("/")


def _oauth_error(status: int, error: str, description: str) -> ApiError:
    headers = {"WWW-Authenticate": 'Basic realm="cxone"'} if status == 401 else {}
    payload = {"error": error, "error_description": description}
    return ApiError(status, description, code=error, headers=headers, payload=payload)


def _new_id() -> str:
    return str(uuid.uuid4())


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_json(data: Json) -> str:
    return _b64url(json.dumps(data, separators=(",", ":")).encode())
