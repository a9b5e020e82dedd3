"""The CXone client: every call the relay makes to CXone goes through `CxoneClient.call`.

It resolves the API bases (configured override, or cxone-configuration discovery), attaches the
bearer token, replaces the token once after a 401, carries an idempotency key on every write, and
records latency and failures as metrics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import boto3
import requests

from cxone_relay.platform.cxone import endpoints
from cxone_relay.platform.cxone.models import (
    DncResult,
    DtmfRequest,
    DtmfResult,
    InboundMessage,
    OutboundMessage,
    Page,
    SentMessage,
    StatusUpdate,
    StoredMessage,
)
from cxone_relay.platform.cxone.tokens import (
    TOKEN_LEASE_PURPOSE,
    TOKEN_LEASE_SECONDS,
    AccessToken,
    Credentials,
    CredentialsLoader,
    SsmTokenCache,
    TokenFetcher,
    TokenProvider,
)
from cxone_relay.platform.data.dynamo import DynamoTable
from cxone_relay.platform.data.leases import Lease
from cxone_relay.platform.errors import (
    ConfigurationError,
    PermanentUpstreamError,
    RetryableUpstreamError,
    UnauthorizedError,
    UpstreamError,
)
from cxone_relay.platform.observability import metrics
from cxone_relay.platform.secrets import secret_json
from cxone_relay.platform.settings import CxoneEnvironment, CxoneSettings
from cxone_relay.platform.transport import RetryingHttp, RetryPolicy, TimeBudget, response_json

Api = Literal["admin", "dfo"]


@dataclass(frozen=True)
class ApiBases:
    admin: str
    dfo: str


class ApiBaseResolver:
    """Where an environment's Admin/Agent and DFO APIs live, discovered once per container."""

    def __init__(self, http: RetryingHttp, tokens: TokenProvider) -> None:
        self._http = http
        self._tokens = tokens
        self._resolved: dict[str, ApiBases] = {}
        self._lock = threading.Lock()

    def bases(self, environment: CxoneEnvironment, budget: TimeBudget) -> ApiBases:
        if environment.api_base_url:
            return ApiBases(environment.api_base_url, environment.dfo_base_url or environment.api_base_url)
        with self._lock:
            if environment.name not in self._resolved:
                self._resolved[environment.name] = self._discover(environment, budget)
            return self._resolved[environment.name]

    def _discover(self, environment: CxoneEnvironment, budget: TimeBudget) -> ApiBases:
        tenant_id = environment.tenant_id or self._tokens.get(environment, budget).tenant_id
        if not tenant_id:
            raise ConfigurationError(
                f"CXone environment {environment.name}: no tenant_id configured and none in the id_token"
            )
        response = self._http.request(
            "GET",
            environment.auth_url + endpoints.CXONE_CONFIGURATION,
            budget,
            params={"tenantId": tenant_id},
        )
        body = response_json(response, "cxone")
        try:
            admin = str(body["api_endpoint"]).rstrip("/")
            dfo = environment.dfo_base_url or endpoints.dfo_base_from_configuration(
                body["area"], body["domain"]
            )
        except (KeyError, TypeError) as exc:
            raise PermanentUpstreamError("cxone", f"cxone-configuration lacks {exc}") from None
        return ApiBases(admin, dfo)


class CxoneClient:
    """Calls one CXone environment."""

    def __init__(
        self,
        environment: CxoneEnvironment,
        tokens: TokenProvider,
        http: RetryingHttp,
        resolver: ApiBaseResolver,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.environment = environment
        self._tokens = tokens
        self._http = http
        self._resolver = resolver
        self._clock = clock

    def call(
        self,
        method: str,
        api: Api,
        path: str,
        budget: TimeBudget,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        operation: str,
        answers: frozenset[int] = frozenset(),
    ) -> requests.Response:
        """One CXone call. CxoneRequestFailed counts every call that did not succeed, discovery
        and token failures included; CxoneLatency only calls whose request went out."""
        if method in {"POST", "PUT", "PATCH", "DELETE"} and not idempotency_key:
            raise ValueError(f"CXone write {operation} needs an idempotency key")
        started: float | None = None
        try:
            bases = self._resolver.bases(self.environment, budget)
            url = (bases.dfo if api == "dfo" else bases.admin) + path
            token = self._tokens.get(self.environment, budget)
            started = self._clock()
            try:
                response = self._send(method, url, token, budget, json, params, idempotency_key, answers)
            except UnauthorizedError:
                token = self._tokens.refresh_after_unauthorized(self.environment, token, budget)
                response = self._send(method, url, token, budget, json, params, idempotency_key, answers)
        except UpstreamError:
            metrics.add_metric(name="CxoneRequestFailed", unit="Count", value=1)
            raise
        finally:
            if started is not None:
                metrics.add_metric(
                    name="CxoneLatency", unit="Milliseconds", value=(self._clock() - started) * 1000
                )
        return response

    def _send(
        self,
        method: str,
        url: str,
        token: AccessToken,
        budget: TimeBudget,
        json: Any,
        params: dict[str, Any] | None,
        idempotency_key: str | None,
        answers: frozenset[int],
    ) -> requests.Response:
        return self._http.request(
            method,
            url,
            budget,
            headers={"Authorization": f"Bearer {token.value}", "Accept": "application/json"},
            json=json,
            params=params,
            idempotency_key=idempotency_key,
            answers=answers,
        )

    # Typed operations: the client builds every CXone payload, so workflows never do -----------

    def _channel(self, channel_id: str | None) -> str:
        channel = channel_id or self.environment.dfo_channel_id
        if not channel:
            raise ConfigurationError(f"CXone environment {self.environment.name} has no dfo_channel_id")
        return channel

    def _admin_path(self, template: str, **params: str) -> str:
        return endpoints.path(template, version=self.environment.admin_api_version, **params)

    def store_inbound_message(
        self,
        message: InboundMessage,
        *,
        idempotency_key: str,
        budget: TimeBudget,
        channel_id: str | None = None,
    ) -> StoredMessage:
        """Store a message a customer sent on our own channel (DFO keeps one thread per sender)."""
        payload: dict[str, Any] = {
            "idOnExternalPlatform": message.external_id,
            "direction": "inbound",
            "createdAtWithMilliseconds": iso_milliseconds(message.created_at),
            "thread": {"idOnExternalPlatform": message.thread_id},
            "messageContent": {"type": "TEXT", "payload": {"text": message.text}},
            "authorEndUserIdentity": {"idOnExternalPlatform": message.author_id},
        }
        if message.routing_queue_id:
            payload["routingQueueId"] = message.routing_queue_id
        path = endpoints.path(endpoints.DFO_STORE_MESSAGE, channel_id=self._channel(channel_id))
        response = self.call(
            "POST",
            "dfo",
            path,
            budget,
            json=payload,
            idempotency_key=idempotency_key,
            operation="store-inbound-message",
            # DFO de-duplicates on idOnExternalPlatform: a conflict means an earlier attempt (one
            # that timed out after it landed, say) stored it. Done, whatever the Idempotency-Key.
            answers=frozenset({endpoints.DFO_DUPLICATE_MESSAGE_STATUS}),
        )
        if response.status_code == endpoints.DFO_DUPLICATE_MESSAGE_STATUS:
            return StoredMessage(id=None, already_stored=True)
        return StoredMessage(id=_optional_str(_json_or_empty(response).get("id")))

    def send_outbound(
        self,
        message: OutboundMessage,
        *,
        idempotency_key: str,
        budget: TimeBudget,
        channel_id: str | None = None,
    ) -> SentMessage:
        payload = {
            "thread": {"idOnExternalPlatform": message.thread_id},
            "messageContent": {"type": "TEXT", "payload": {"text": message.text}},
            "recipients": [
                {"idOnExternalPlatform": recipient, "isPrimary": index == 0}
                for index, recipient in enumerate(message.recipients)
            ],
        }
        body = self._post_to_channel(
            endpoints.DFO_SEND_OUTBOUND, channel_id, payload, idempotency_key, budget, "send-outbound"
        )
        return SentMessage(
            id=_optional_str(body.get("id")), external_id=_optional_str(body.get("idOnExternalPlatform"))
        )

    def update_message_status(
        self, update: StatusUpdate, *, idempotency_key: str, budget: TimeBudget, channel_id: str | None = None
    ) -> None:
        payload: dict[str, Any] = {"status": update.status, "updatedAt": iso_milliseconds(update.updated_at)}
        if update.reason:
            payload["reason"] = update.reason
        path = endpoints.path(
            endpoints.DFO_MESSAGE_STATUS, channel_id=self._channel(channel_id), message_id=update.external_id
        )
        self.call(
            "PUT",
            "dfo",
            path,
            budget,
            json=payload,
            idempotency_key=idempotency_key,
            operation="message-status",
        )

    def add_dnc_records(
        self, phones: list[str], *, idempotency_key: str, budget: TimeBudget, group_id: str | None = None
    ) -> DncResult:
        return self._dnc("POST", phones, idempotency_key, budget, group_id, "dnc-add")

    def remove_dnc_records(
        self, phones: list[str], *, idempotency_key: str, budget: TimeBudget, group_id: str | None = None
    ) -> DncResult:
        return self._dnc("DELETE", phones, idempotency_key, budget, group_id, "dnc-remove")

    def _dnc(
        self,
        method: str,
        phones: list[str],
        idempotency_key: str,
        budget: TimeBudget,
        group_id: str | None,
        operation: str,
    ) -> DncResult:
        group = group_id or self.environment.dnc_group_id
        if not group:
            raise ConfigurationError(f"CXone environment {self.environment.name} has no dnc_group_id")
        # The Admin API wants digits only (CXONE_API.md), so "+14155552671" goes as "14155552671".
        payload = {"dncGroupRecords": [{"phoneNumber": phone.lstrip("+")} for phone in phones]}
        response = self.call(
            method,
            "admin",
            self._admin_path(endpoints.ADMIN_DNC_RECORDS, group_id=group),
            budget,
            json=payload,
            idempotency_key=idempotency_key,
            operation=operation,
        )
        return DncResult.from_response(_json_or_empty(response))

    def send_dtmf(self, dtmf: DtmfRequest, *, idempotency_key: str, budget: TimeBudget) -> DtmfResult:
        """Play digits into a live agent session. A session that has ended is an answer
        (`session_ended`), not an error: no later attempt can reach it."""
        payload: dict[str, Any] = {"dtmfSequence": dtmf.sequence, "toneDurationMS": dtmf.tone_duration_ms}
        if dtmf.tone_spacing_ms is not None:
            payload["toneSpacingMS"] = dtmf.tone_spacing_ms
        path = endpoints.path(
            endpoints.AGENT_SEND_DTMF, version=endpoints.AGENT_API_VERSION, session_id=dtmf.session_id
        )
        response = self.call(
            "POST",
            "admin",
            path,
            budget,
            json=payload,
            idempotency_key=idempotency_key,
            operation="send-dtmf",
            answers=frozenset({endpoints.AGENT_SESSION_ENDED_STATUS}),
        )
        return DtmfResult(
            status=response.status_code,
            response=_json_or_empty(response),
            session_ended=response.status_code == endpoints.AGENT_SESSION_ENDED_STATUS,
        )

    def list_contacts(
        self, filters: Mapping[str, str | list[str]], budget: TimeBudget, scroll_token: str | None = None
    ) -> Page:
        return self._page(endpoints.DFO_CONTACTS, filters, budget, scroll_token, "list-contacts")

    def list_messages(
        self, filters: Mapping[str, str | list[str]], budget: TimeBudget, scroll_token: str | None = None
    ) -> Page:
        return self._page(endpoints.DFO_MESSAGES, filters, budget, scroll_token, "list-messages")

    def _page(
        self,
        path: str,
        filters: Mapping[str, str | list[str]],
        budget: TimeBudget,
        scroll_token: str | None,
        operation: str,
    ) -> Page:
        # A scroll keeps the filters of its first page: later pages send the token alone.
        params: dict[str, Any] = {endpoints.DFO_SCROLL_TOKEN: scroll_token} if scroll_token else dict(filters)
        body = response_json(
            self.call("GET", "dfo", path, budget, params=params, operation=operation), "cxone"
        )
        if not isinstance(body, dict) or not isinstance(body.get("data", []), list):
            raise RetryableUpstreamError("cxone", f"{operation}: unexpected listing shape")
        items = [item for item in body.get("data") or [] if isinstance(item, dict)]
        next_token = _optional_str(body.get(endpoints.DFO_SCROLL_TOKEN)) or None
        return Page(items=items, scroll_token=next_token, hits=body.get("hits"))

    def _post_to_channel(
        self,
        template: str,
        channel_id: str | None,
        payload: dict[str, Any],
        idempotency_key: str,
        budget: TimeBudget,
        operation: str,
    ) -> dict[str, Any]:
        path = endpoints.path(template, channel_id=self._channel(channel_id))
        response = self.call(
            "POST", "dfo", path, budget, json=payload, idempotency_key=idempotency_key, operation=operation
        )
        return _json_or_empty(response)


def iso_milliseconds(moment: datetime) -> str:
    """CXone's timestamp format: UTC, milliseconds, Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _json_or_empty(response: requests.Response) -> dict[str, Any]:
    if not response.content:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {"data": body}


def credentials_from_secrets(default_secret_arn: str) -> CredentialsLoader:
    """Credentials per environment from Secrets Manager (the stack's secret unless overridden)."""

    def load(environment: CxoneEnvironment) -> Credentials:
        arn = environment.credentials_secret_arn or default_secret_arn
        required: tuple[str, ...] = ("client_id", "client_secret")
        if environment.grant_type == "password":
            required += ("access_key_id", "access_key_secret")
        secret = secret_json(arn, required=required)
        return Credentials(
            client_id=secret["client_id"],
            client_secret=secret["client_secret"],
            access_key_id=secret.get("access_key_id"),
            access_key_secret=secret.get("access_key_secret"),
        )

    return load


class CxoneGateway:
    """One client per configured environment, sharing a session, a token provider and a resolver.

    Built once per container; tests pass their own SSM client, credentials loader, sleeper or clock.
    """

    def __init__(
        self,
        settings: CxoneSettings,
        *,
        ssm_client: Any = None,
        dynamodb_client: Any = None,
        credentials: CredentialsLoader | None = None,
        http: RetryingHttp | None = None,
        clock: Callable[[], float] = time.time,
        sleeper: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.http = http or RetryingHttp(
            "cxone",
            policy=RetryPolicy(
                max_attempts=settings.cxone_max_attempts, read_timeout=settings.cxone_timeout_seconds
            ),
            sleeper=sleeper,
        )
        self.tokens = TokenProvider(
            TokenFetcher(
                self.http,
                credentials or credentials_from_secrets(settings.cxone_default_credentials_secret_arn),
                clock,
            ),
            SsmTokenCache(ssm_client or boto3.client("ssm"), settings.cxone_token_parameter_prefix),
            settings.token_refresh_margin_seconds,
            clock,
            lease=Lease(
                DynamoTable(dynamodb_client or boto3.client("dynamodb"), settings.state_table),
                purpose=TOKEN_LEASE_PURPOSE,
                lease_seconds=TOKEN_LEASE_SECONDS,
                clock=clock,
            ),
            sleeper=sleeper,
        )
        self.resolver = ApiBaseResolver(self.http, self.tokens)
        self._clients = {
            environment.name: CxoneClient(environment, self.tokens, self.http, self.resolver)
            for environment in settings.cxone_environments
        }

    def client(self, environment_name: str | None = None) -> CxoneClient:
        name = environment_name or self.settings.primary_environment.name
        try:
            return self._clients[name]
        except KeyError:
            raise ConfigurationError(f"no CXone environment named {name!r}") from None
