"""The CXone client: every call the relay makes to CXone goes through `CxoneClient.call`.

It resolves the API bases (configured override, or cxone-configuration discovery), attaches the
bearer token, replaces the token once after a 401, carries an idempotency key on every write, and
records latency and failures as metrics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import boto3
import requests

from cxone_relay.cxone import endpoints
from cxone_relay.cxone.tokens import (
    AccessToken,
    Credentials,
    CredentialsLoader,
    SsmTokenCache,
    TokenFetcher,
    TokenLease,
    TokenProvider,
)
from cxone_relay.errors import ConfigurationError, PermanentUpstreamError, UnauthorizedError, UpstreamError
from cxone_relay.observability import metrics
from cxone_relay.secrets import secret_json
from cxone_relay.settings import CxoneEnvironment, CxoneSettings
from cxone_relay.transport import RetryingHttp, RetryPolicy, TimeBudget, response_json

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
    ) -> requests.Response:
        if method in {"POST", "PUT", "PATCH", "DELETE"} and not idempotency_key:
            raise ValueError(f"CXone write {operation} needs an idempotency key")
        bases = self._resolver.bases(self.environment, budget)
        url = (bases.dfo if api == "dfo" else bases.admin) + path
        started = self._clock()
        try:
            token = self._tokens.get(self.environment, budget)
            try:
                response = self._send(method, url, token, budget, json, params, idempotency_key)
            except UnauthorizedError:
                token = self._tokens.refresh_after_unauthorized(self.environment, token, budget)
                response = self._send(method, url, token, budget, json, params, idempotency_key)
        except UpstreamError:
            metrics.add_metric(name="CxoneRequestFailed", unit="Count", value=1)
            raise
        finally:
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
    ) -> requests.Response:
        return self._http.request(
            method,
            url,
            budget,
            headers={"Authorization": f"Bearer {token.value}", "Accept": "application/json"},
            json=json,
            params=params,
            idempotency_key=idempotency_key,
        )

    # Typed operations used by the workflows ---------------------------------------------------

    def _channel(self, channel_id: str | None) -> str:
        channel = channel_id or self.environment.dfo_channel_id
        if not channel:
            raise ConfigurationError(f"CXone environment {self.environment.name} has no dfo_channel_id")
        return channel

    def store_inbound_message(
        self,
        message: dict[str, Any],
        *,
        idempotency_key: str,
        budget: TimeBudget,
        channel_id: str | None = None,
    ) -> dict[str, Any]:
        return self._post_to_channel(
            endpoints.DFO_STORE_MESSAGE, message, idempotency_key, budget, channel_id, "store-inbound-message"
        )

    def send_outbound(
        self,
        message: dict[str, Any],
        *,
        idempotency_key: str,
        budget: TimeBudget,
        channel_id: str | None = None,
    ) -> dict[str, Any]:
        return self._post_to_channel(
            endpoints.DFO_SEND_OUTBOUND, message, idempotency_key, budget, channel_id, "send-outbound"
        )

    def _post_to_channel(
        self,
        template: str,
        message: dict[str, Any],
        idempotency_key: str,
        budget: TimeBudget,
        channel_id: str | None,
        operation: str,
    ) -> dict[str, Any]:
        response = self.call(
            "POST",
            "dfo",
            endpoints.path(template, channel_id=self._channel(channel_id)),
            budget,
            json=message,
            idempotency_key=idempotency_key,
            operation=operation,
        )
        return _json_or_empty(response)


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
            lease=TokenLease(dynamodb_client or boto3.client("dynamodb"), settings.state_table, clock),
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
