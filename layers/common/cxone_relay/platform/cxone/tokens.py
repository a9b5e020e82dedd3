"""CXone access tokens: in memory, then in SSM (shared by every container), then fetched.

A token is reused until it is within the refresh margin of expiry. One fetch at a time per
environment per container (a lock, re-checked after acquiring, so 20 concurrent callers cause one
token request), and a container that finds a fresh token in SSM uses it instead of fetching.
Across containers a short lease in the state table lets one container fetch while the others wait
for its token to appear in SSM, so a burst of cold starts does not stampede the token endpoint; a
holder that dies only delays the others by the wait, never blocks them. After a 401 the token is
replaced once; callers that saw the same rejected token share that one replacement.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cxone_relay.platform.cxone import endpoints
from cxone_relay.platform.data.leases import Lease
from cxone_relay.platform.errors import AuthenticationError, PermanentUpstreamError, UpstreamError
from cxone_relay.platform.observability import logger
from cxone_relay.platform.redaction import register_secret
from cxone_relay.platform.settings import CxoneEnvironment
from cxone_relay.platform.transport import RetryingHttp, TimeBudget, response_json

# The lease (data.leases) under which one container at a time fetches an environment's token.
TOKEN_LEASE_PURPOSE = "cxone-token"  # noqa: S105 - a lease name, not a secret
TOKEN_LEASE_SECONDS = 10.0


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: float
    tenant_id: str | None = None

    def is_fresh(self, now: float, margin_seconds: float) -> bool:
        return self.expires_at - margin_seconds > now


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    access_key_id: str | None = None
    access_key_secret: str | None = None


CredentialsLoader = Callable[[CxoneEnvironment], Credentials]


class SsmTokenCache:
    """One SecureString parameter per CXone environment holding the token and its expiry."""

    def __init__(self, ssm_client: Any, prefix: str) -> None:
        self._ssm = ssm_client
        self._prefix = prefix.rstrip("/")

    def parameter_name(self, environment_name: str) -> str:
        return f"{self._prefix}/{environment_name}"

    def load(self, environment_name: str) -> AccessToken | None:
        name = self.parameter_name(environment_name)
        try:
            response = self._ssm.get_parameter(Name=name, WithDecryption=True)
            stored = json.loads(response["Parameter"]["Value"])
            token = AccessToken(
                value=str(stored["value"]),
                expires_at=float(stored["expires_at"]),
                tenant_id=stored.get("tenant_id"),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ParameterNotFound":
                logger.warning("token cache unreadable", extra={"parameter": name, "error": str(exc)})
            return None
        except (BotoCoreError, ValueError, KeyError, TypeError) as exc:
            # A damaged or unreachable cache costs one token request, never an outage.
            logger.warning("token cache unreadable", extra={"parameter": name, "error": str(exc)})
            return None
        register_secret(token.value)
        return token

    def save(self, environment_name: str, token: AccessToken) -> None:
        name = self.parameter_name(environment_name)
        try:
            self._ssm.put_parameter(
                Name=name,
                Value=json.dumps(asdict(token)),
                Type="SecureString",
                Overwrite=True,
                Description="CXone access token cache (written by cxone-relay; safe to delete)",
            )
        except (BotoCoreError, ClientError) as exc:
            logger.warning("token cache not written", extra={"parameter": name, "error": str(exc)})


def _tenant_from_id_token(id_token: str | None) -> str | None:
    """The id_token carries tenantId; we only read the claim, CXone already authenticated us."""
    if not id_token or id_token.count(".") < 2:
        return None
    payload = id_token.split(".")[1]
    try:
        # JWTs drop base64's padding; two "=" are the most any part needs, and excess is ignored.
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    except (ValueError, TypeError):
        return None
    tenant = claims.get("tenantId") if isinstance(claims, dict) else None
    return str(tenant) if tenant else None


class TokenFetcher:
    """OpenID discovery, then the grant the environment is configured for."""

    def __init__(
        self, http: RetryingHttp, credentials: CredentialsLoader, clock: Callable[[], float] = time.time
    ) -> None:
        self._http = http
        self._credentials = credentials
        self._clock = clock
        self._token_endpoints: dict[str, str] = {}

    def token_endpoint(self, environment: CxoneEnvironment, budget: TimeBudget) -> str:
        cached = self._token_endpoints.get(environment.auth_url)
        if cached:
            return cached
        response = self._http.request("GET", environment.auth_url + endpoints.OPENID_CONFIGURATION, budget)
        document = response_json(response, "cxone-auth")
        endpoint = document.get("token_endpoint") if isinstance(document, dict) else None
        if not endpoint:
            raise PermanentUpstreamError("cxone-auth", "discovery document has no token_endpoint")
        self._token_endpoints[environment.auth_url] = endpoint
        return str(endpoint)

    def fetch(self, environment: CxoneEnvironment, budget: TimeBudget) -> AccessToken:
        credentials = self._credentials(environment)
        form: dict[str, str] = {"grant_type": environment.grant_type}
        if environment.grant_type == "password":
            if not (credentials.access_key_id and credentials.access_key_secret):
                raise AuthenticationError("cxone-auth", "password grant needs access_key_id and secret")
            form |= {"username": credentials.access_key_id, "password": credentials.access_key_secret}
        requested_at = self._clock()
        try:
            response = self._http.request(
                "POST",
                self.token_endpoint(environment, budget),
                budget,
                data=form,
                auth=(credentials.client_id, credentials.client_secret),
            )
        except PermanentUpstreamError as exc:
            raise AuthenticationError(
                "cxone-auth", f"token request refused for environment {environment.name}", status=exc.status
            ) from None
        body = response_json(response, "cxone-auth")
        value = body.get("access_token") if isinstance(body, dict) else None
        if not value:
            raise AuthenticationError("cxone-auth", "token response has no access_token")
        register_secret(value)
        register_secret(body.get("refresh_token"))
        register_secret(body.get("id_token"))
        return AccessToken(
            value=value,
            expires_at=requested_at + float(body.get("expires_in", 3600)),
            tenant_id=_tenant_from_id_token(body.get("id_token")),
        )


class TokenProvider:
    def __init__(
        self,
        fetcher: TokenFetcher,
        cache: SsmTokenCache,
        refresh_margin_seconds: float,
        clock: Callable[[], float] = time.time,
        *,
        # Across containers, one fetch at a time per environment: without it, a burst of cold
        # starts would each fetch a token of their own.
        lease: Lease,
        sleeper: Callable[[float], None] = time.sleep,
        # As long as a lease lasts: a holder's fetch (discovery + token, each with its timeouts)
        # may take most of it, and giving up earlier is exactly the stampede the lease prevents.
        lease_wait_seconds: float = 10.5,
        lease_poll_seconds: float = 0.25,
    ) -> None:
        self._fetcher = fetcher
        self._cache = cache
        self._margin = refresh_margin_seconds
        self._clock = clock
        self._lease = lease
        self._sleep = sleeper
        self._lease_wait = lease_wait_seconds
        self._lease_poll = lease_poll_seconds
        self._memory: dict[str, AccessToken] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, environment_name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(environment_name, threading.Lock())

    def _fresh(self, token: AccessToken | None) -> bool:
        return token is not None and token.is_fresh(self._clock(), self._margin)

    def get(self, environment: CxoneEnvironment, budget: TimeBudget) -> AccessToken:
        held = self._memory.get(environment.name)
        if held is not None and self._fresh(held):
            return held  # the common case, without waiting for a refresh in another thread
        with self._lock(environment.name):
            token = self._memory.get(environment.name)
            if token is not None and self._fresh(token):
                return token  # another thread refreshed it while we waited
            shared = self._cache.load(environment.name)
            if shared is not None and self._fresh(shared):
                self._memory[environment.name] = shared
                return shared
            return self._fetch_and_share(environment, budget)

    def refresh_after_unauthorized(
        self, environment: CxoneEnvironment, rejected: AccessToken, budget: TimeBudget
    ) -> AccessToken:
        with self._lock(environment.name):
            current = self._memory.get(environment.name)
            if current is not None and current.value != rejected.value and self._fresh(current):
                return current  # someone already replaced the rejected token
            shared = self._cache.load(environment.name)
            if shared is not None and shared.value != rejected.value and self._fresh(shared):
                self._memory[environment.name] = shared
                return shared
            logger.info("access token refused; fetching a new one", extra={"environment": environment.name})
            return self._fetch_and_share(environment, budget, rejected=rejected.value)

    def _take_lease(self, environment_name: str) -> bool:
        """Whether we may fetch now. A lease we cannot even ask for (DynamoDB unreachable or
        throttled) must not stop token fetches: it only costs the stampede protection."""
        try:
            return self._lease.acquire(environment_name)
        except (BotoCoreError, ClientError) as exc:
            logger.warning("token lease unavailable; fetching without it", extra={"error": str(exc)})
            return True

    def _give_back_lease(self, environment_name: str) -> None:
        # A release that fails costs nothing: the lease lapses by itself.
        with contextlib.suppress(BotoCoreError, ClientError):
            self._lease.release(environment_name)

    def _fetch_and_share(
        self, environment: CxoneEnvironment, budget: TimeBudget, rejected: str | None = None
    ) -> AccessToken:
        leased = self._take_lease(environment.name)
        if not leased:
            shared, leased = self._wait_for_holder(environment, budget, rejected)
            if shared is not None:
                self._memory[environment.name] = shared
                return shared
            if not leased:
                logger.warning(
                    "token lease still held; fetching anyway", extra={"environment": environment.name}
                )
        try:
            if leased:
                # Another container may have fetched, shared and released between our last look at
                # SSM and our taking the lease: its token is in SSM now, and a second fetch would be
                # exactly the stampede the lease exists to stop.
                shared = self._cache.load(environment.name)
                if shared is not None and shared.value != rejected and self._fresh(shared):
                    self._memory[environment.name] = shared
                    return shared
            token = self._fetcher.fetch(environment, budget)
            self._memory[environment.name] = token
            # Shared before the lease goes, so whoever takes the lease next finds it in SSM.
            self._cache.save(environment.name, token)
        except UpstreamError:
            self._memory.pop(environment.name, None)
            raise
        finally:
            if leased:
                self._give_back_lease(environment.name)
        logger.info("fetched CXone access token", extra={"environment": environment.name})
        return token

    def _wait_for_holder(
        self, environment: CxoneEnvironment, budget: TimeBudget, rejected: str | None
    ) -> tuple[AccessToken | None, bool]:
        """Another container holds the lease: poll SSM for its token until the lease would have
        lapsed (or our budget ends), taking the lease over if the holder gives it up unfulfilled.
        Returns (its token, None) or (None, whether we now hold the lease)."""
        waited = 0.0
        while waited + self._lease_poll <= min(self._lease_wait, budget.usable_seconds()):
            self._sleep(self._lease_poll)
            waited += self._lease_poll
            shared = self._cache.load(environment.name)
            if shared is not None and shared.value != rejected and self._fresh(shared):
                return shared, False
            if self._take_lease(environment.name):
                return None, True
        return None, False
