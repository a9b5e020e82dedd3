"""The CXone token cache against the CXone simulator and moto SSM."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from datetime import UTC, datetime

import boto3
import pytest
import requests
from botocore.exceptions import ClientError, EndpointConnectionError

from cxone_relay.platform.cxone.client import CxoneGateway
from cxone_relay.platform.cxone.models import InboundMessage
from cxone_relay.platform.cxone.tokens import (
    TOKEN_LEASE_PURPOSE,
    TOKEN_LEASE_SECONDS,
    AccessToken,
    Credentials,
    SsmTokenCache,
    TokenFetcher,
    _tenant_from_id_token,
)
from cxone_relay.platform.data import keys
from cxone_relay.platform.data.dynamo import DynamoTable
from cxone_relay.platform.data.leases import Lease
from cxone_relay.platform.errors import (
    AuthenticationError,
    PermanentUpstreamError,
    RetryableUpstreamError,
    UnauthorizedError,
)
from cxone_relay.platform.redaction import redact_text
from cxone_relay.platform.settings import CxoneEnvironment, CxoneSettings
from cxone_relay.platform.transport import TimeBudget
from tests.conftest import SIM_CREDENTIALS, STATE_TABLE, TOKEN_PREFIX, cxone_settings, sim_credentials

TOKEN_PATH = "/auth/token"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


PREFIX = TOKEN_PREFIX


def settings_for(sim_url: str, **environment) -> CxoneSettings:
    return cxone_settings(sim_url, **environment)


def token_lease(clock: Clock, holder: str) -> Lease:
    """Another container's hold on the token lease, as the gateway takes it."""
    table = DynamoTable(boto3.client("dynamodb"), STATE_TABLE)
    return Lease(table, TOKEN_LEASE_PURPOSE, TOKEN_LEASE_SECONDS, clock, holder=holder)


def new_container(sim_url: str, clock: Clock, sleeper=None, dynamodb=None, **environment) -> CxoneGateway:
    """A fresh gateway is what a new Lambda container has: no memory, only SSM (and the lease)."""
    return CxoneGateway(
        settings_for(sim_url, **environment),
        ssm_client=boto3.client("ssm"),
        dynamodb_client=dynamodb or boto3.client("dynamodb"),
        credentials=sim_credentials,
        clock=clock,
        sleeper=sleeper or _no_waiting,
    )


def _no_waiting(seconds: float) -> None:
    raise AssertionError(f"waited {seconds}s for another container's token")


def token_requests(sim) -> list[dict]:
    return [r for r in sim.requests(path_prefix=TOKEN_PATH) if r["status"] == 200]


def budget() -> TimeBudget:
    return TimeBudget.fixed(30)


def test_second_call_in_a_container_makes_no_request(stack, cxone_sim):
    gateway = new_container(cxone_sim.url, Clock())
    environment = gateway.settings.primary_environment

    first = gateway.tokens.get(environment, budget())
    second = gateway.tokens.get(environment, budget())

    assert first == second
    assert len(cxone_sim.requests(path_prefix=TOKEN_PATH)) == 1


def test_token_is_cached_in_ssm_as_a_secure_string_with_expiry(stack, cxone_sim):
    clock = Clock()
    gateway = new_container(cxone_sim.url, clock)
    token = gateway.tokens.get(gateway.settings.primary_environment, budget())

    parameter = boto3.client("ssm").get_parameter(Name=f"{PREFIX}/primary", WithDecryption=True)["Parameter"]
    assert parameter["Type"] == "SecureString"
    stored = json.loads(parameter["Value"])
    assert stored["value"] == token.value
    assert stored["expires_at"] == pytest.approx(clock.now + 3600)


def test_a_new_container_reuses_the_ssm_token_without_a_token_request(stack, cxone_sim):
    clock = Clock()
    first = new_container(cxone_sim.url, clock)
    token = first.tokens.get(first.settings.primary_environment, budget())

    second = new_container(cxone_sim.url, clock)
    reused = second.tokens.get(second.settings.primary_environment, budget())

    assert reused.value == token.value
    assert len(token_requests(cxone_sim)) == 1


def test_refresh_margin_triggers_a_new_token(stack, cxone_sim):
    clock = Clock()
    gateway = new_container(cxone_sim.url, clock)
    environment = gateway.settings.primary_environment
    first = gateway.tokens.get(environment, budget())

    clock.now += 3600 - 301  # still outside the 300 s margin
    assert gateway.tokens.get(environment, budget()) == first
    clock.now += 2  # now inside it
    refreshed = gateway.tokens.get(environment, budget())

    assert refreshed.value != first.value
    assert len(token_requests(cxone_sim)) == 2
    # and the refreshed token is what other containers now find in SSM
    assert new_container(cxone_sim.url, clock).tokens.get(environment, budget()).value == refreshed.value


def test_a_401_gives_one_refresh_and_one_retry(stack, cxone_sim):
    gateway = new_container(cxone_sim.url, Clock())
    client = gateway.client()
    client.store_inbound_message(_message("m-1"), idempotency_key="m-1", budget=budget())
    cxone_sim.expire_tokens()

    client.store_inbound_message(_message("m-2"), idempotency_key="m-2", budget=budget())

    store_calls = [
        r["status"] for r in cxone_sim.requests(path_prefix="/dfo/3.0/channels/sms-channel/messages")
    ]
    assert store_calls == [201, 401, 201]
    assert len(token_requests(cxone_sim)) == 2


def test_a_second_401_is_not_retried_again(stack, cxone_sim):
    gateway = new_container(cxone_sim.url, Clock())
    cxone_sim.add_fault(status=401, path_prefix="/dfo/3.0/channels")

    with pytest.raises(UnauthorizedError):
        gateway.client().store_inbound_message(_message("m-1"), idempotency_key="m-1", budget=budget())

    assert len(cxone_sim.requests(path_prefix="/dfo/3.0/channels")) == 2
    assert len(token_requests(cxone_sim)) == 2


def test_twenty_concurrent_callers_cause_exactly_one_token_request(stack, cxone_sim):
    gateway = new_container(cxone_sim.url, Clock())
    environment = gateway.settings.primary_environment
    cxone_sim.add_fault(latency_ms=200, path_prefix=TOKEN_PATH, count=1)  # hold the first fetch open
    start = threading.Barrier(20)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def caller() -> None:
        start.wait()
        try:
            tokens.append(gateway.tokens.get(environment, budget()).value)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert not errors
    assert len(tokens) == 20
    assert len(set(tokens)) == 1
    assert len(cxone_sim.requests(path_prefix=TOKEN_PATH)) == 1


def test_client_credentials_grant_is_used_when_configured(stack, cxone_sim):
    gateway = new_container(cxone_sim.url, Clock(), grant_type="client_credentials")
    gateway.tokens.get(gateway.settings.primary_environment, budget())

    form = cxone_sim.requests(path_prefix=TOKEN_PATH)[0]["body"]
    assert form["grant_type"] == "client_credentials"
    assert "password" not in form


def test_password_grant_sends_the_access_key(stack, cxone_sim):
    gateway = new_container(cxone_sim.url, Clock())
    gateway.tokens.get(gateway.settings.primary_environment, budget())

    form = cxone_sim.requests(path_prefix=TOKEN_PATH)[0]["body"]
    assert form["grant_type"] == "password"
    assert form["username"] == SIM_CREDENTIALS["access_key_id"]


def test_bad_credentials_are_a_permanent_authentication_error(stack, cxone_sim):
    gateway = CxoneGateway(
        settings_for(cxone_sim.url),
        ssm_client=boto3.client("ssm"),
        dynamodb_client=boto3.client("dynamodb"),
        credentials=lambda env: Credentials(**(SIM_CREDENTIALS | {"access_key_secret": "wrong-secret"})),
    )
    with pytest.raises(AuthenticationError):
        gateway.tokens.get(gateway.settings.primary_environment, budget())
    assert len(cxone_sim.requests(path_prefix=TOKEN_PATH)) == 1


def test_api_base_is_discovered_through_cxone_configuration(stack, cxone_sim):
    clock = Clock()
    environment = {"api_base_url": None, "tenant_id": None}
    gateway = new_container(cxone_sim.url, clock, **environment)

    bases = gateway.resolver.bases(gateway.settings.primary_environment, budget())

    assert bases.admin == cxone_sim.url
    assert bases.dfo == "https://api-de-na1.niceincontact.com"
    query = cxone_sim.requests(path_prefix="/.well-known/cxone-configuration")[0]["query"]
    assert query["tenantId"] == "sim-tenant"  # read from the id_token


def test_configured_base_url_overrides_discovery(stack, cxone_sim):
    gateway = new_container(cxone_sim.url, Clock(), dfo_base_url="https://dfo.example.test")
    bases = gateway.resolver.bases(gateway.settings.primary_environment, budget())
    assert bases.admin == cxone_sim.url
    assert bases.dfo == "https://dfo.example.test"
    assert cxone_sim.requests(path_prefix="/.well-known/cxone-configuration") == []


def test_no_token_or_secret_reaches_the_logs(stack, cxone_sim, captured_logs):
    gateway = new_container(cxone_sim.url, Clock())
    client = gateway.client()
    client.store_inbound_message(_message("m-1"), idempotency_key="m-1", budget=budget())
    cxone_sim.expire_tokens()
    client.store_inbound_message(_message("m-2"), idempotency_key="m-2", budget=budget())
    token = gateway.tokens.get(gateway.settings.primary_environment, budget())

    output = captured_logs.getvalue()
    assert "fetched CXone access token" in output  # the logs were captured at all
    for secret in [token.value, *SIM_CREDENTIALS.values()]:
        assert secret not in output


# Across containers -----------------------------------------------------------------------


def test_stack_state_table_is_the_one_settings_name(stack):
    assert stack.tables["StateTable"] == STATE_TABLE


def test_a_container_that_finds_the_lease_taken_waits_for_the_holders_token(stack, cxone_sim):
    clock = Clock()
    holder = token_lease(clock, "other-container")
    assert holder.acquire("primary")
    delivered = AccessToken("token-from-the-holder", clock.now + 3600)
    waits: list[float] = []

    def holder_delivers_while_we_wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:  # the holder's fetch lands in SSM during our second wait
            SsmTokenCache(boto3.client("ssm"), PREFIX).save("primary", delivered)

    gateway = new_container(cxone_sim.url, clock, sleeper=holder_delivers_while_we_wait)
    token = gateway.tokens.get(gateway.settings.primary_environment, budget())

    assert token == delivered
    assert waits == [0.25, 0.25]
    assert cxone_sim.requests(path_prefix=TOKEN_PATH) == []
    # Kept in memory: the next call needs neither SSM nor the lease (still held: it would wait).
    boto3.client("ssm").delete_parameter(Name=f"{PREFIX}/primary")
    assert gateway.tokens.get(gateway.settings.primary_environment, budget()) == delivered
    assert waits == [0.25, 0.25]


def test_a_holder_that_never_delivers_delays_but_does_not_block(stack, cxone_sim):
    clock = Clock()
    assert token_lease(clock, "crashed").acquire("primary")
    waits: list[float] = []

    gateway = new_container(cxone_sim.url, clock, sleeper=waits.append)
    gateway.tokens.get(gateway.settings.primary_environment, budget())

    assert sum(waits) == pytest.approx(10.5)  # as long as the lease lasts, then it fetches itself
    assert len(token_requests(cxone_sim)) == 1


def test_a_lease_given_up_without_a_token_is_taken_over(stack, cxone_sim):
    clock = Clock()
    holder = token_lease(clock, "failed-fetch")
    assert holder.acquire("primary")
    waits: list[float] = []

    def holder_gives_up(seconds: float) -> None:
        waits.append(seconds)
        holder.release("primary")  # its fetch failed; nothing reaches SSM

    gateway = new_container(cxone_sim.url, clock, sleeper=holder_gives_up)
    gateway.tokens.get(gateway.settings.primary_environment, budget())

    assert waits == [0.25]  # took the lease at the first poll instead of waiting out the lease
    assert len(token_requests(cxone_sim)) == 1
    assert token_lease(clock, "next").acquire("primary")


def test_a_lapsed_lease_is_taken_over_without_waiting(stack, cxone_sim):
    clock = Clock()
    assert token_lease(clock, "crashed").acquire("primary")
    clock.now += 11  # past the 10 s lease

    gateway = new_container(cxone_sim.url, clock)  # any wait would fail the test
    gateway.tokens.get(gateway.settings.primary_environment, budget())

    assert len(token_requests(cxone_sim)) == 1


def test_the_lease_is_released_after_a_fetch(stack, cxone_sim):
    clock = Clock()  # never advances: the lease cannot lapse by time in this test
    first = new_container(cxone_sim.url, clock)
    first.tokens.get(first.settings.primary_environment, budget())
    boto3.client("ssm").delete_parameter(Name=f"{PREFIX}/primary")

    second = new_container(cxone_sim.url, clock)  # would wait (and fail) if the lease were still held
    second.tokens.get(second.settings.primary_environment, budget())

    assert len(token_requests(cxone_sim)) == 2


def test_the_token_is_in_ssm_before_the_lease_is_released(stack, cxone_sim):
    seen_at_release: list[str | None] = []
    real = boto3.client("dynamodb")

    class WatchingDynamoDB:
        """The container's DynamoDB client: on the lease's release, look at what SSM holds."""

        def __getattr__(self, name):
            return getattr(real, name)

        def delete_item(self, **request):
            stored = SsmTokenCache(boto3.client("ssm"), PREFIX).load("primary")
            seen_at_release.append(stored.value if stored else None)
            return real.delete_item(**request)

    gateway = new_container(cxone_sim.url, Clock(), dynamodb=WatchingDynamoDB())
    token = gateway.tokens.get(gateway.settings.primary_environment, budget())

    assert seen_at_release == [token.value]


def test_concurrent_cold_containers_make_one_token_request(stack, cxone_sim):
    """Six cold containers at once, on real threads, with the interleaving forced by events (not
    timing): the first takes the lease and cannot finish its fetch until the five others are all
    waiting for it; they wake only once its token is in SSM."""
    clock = Clock()
    others_waiting = threading.Semaphore(0)
    first_done = threading.Event()
    waiting_containers: set[int] = set()
    lock = threading.Lock()

    def first_credentials(environment):
        for _ in range(5):  # the fetch proceeds once every other container is waiting
            assert others_waiting.acquire(timeout=10)
        return sim_credentials(environment)

    def waiter(index: int):
        def sleep(_seconds: float) -> None:
            with lock:
                if index not in waiting_containers:
                    waiting_containers.add(index)
                    others_waiting.release()
            assert first_done.wait(10)

        return sleep

    first = CxoneGateway(
        settings_for(cxone_sim.url),
        ssm_client=boto3.client("ssm"),
        dynamodb_client=boto3.client("dynamodb"),
        credentials=first_credentials,
        clock=clock,
        sleeper=_no_waiting,
    )
    others = [new_container(cxone_sim.url, clock, sleeper=waiter(n)) for n in range(5)]
    tokens: dict[str, str] = {}

    def cold_start(name: str, gateway: CxoneGateway) -> None:
        tokens[name] = gateway.tokens.get(gateway.settings.primary_environment, budget()).value
        if name == "first":
            first_done.set()

    leader = threading.Thread(target=cold_start, args=("first", first))
    leader.start()
    assert _wait_for_lease_holder()
    followers = [threading.Thread(target=cold_start, args=(f"other-{n}", g)) for n, g in enumerate(others)]
    for thread in followers:
        thread.start()
    for thread in [leader, *followers]:
        thread.join(timeout=20)

    assert len(tokens) == 6 and len(set(tokens.values())) == 1
    assert len(token_requests(cxone_sim)) == 1
    assert waiting_containers == set(range(5))


def _wait_for_lease_holder() -> bool:
    """True once some container holds the token lease (it is taken before the fetch starts);
    read, never taken, so the test cannot steal it."""
    table = DynamoTable(boto3.client("dynamodb"), STATE_TABLE)
    for _ in range(500):
        if table.get(keys.lease(TOKEN_LEASE_PURPOSE, "primary")) is not None:
            return True
        threading.Event().wait(0.01)
    return False


def _message(message_id: str) -> InboundMessage:
    return InboundMessage(
        external_id=message_id,
        thread_id="thread-1",
        author_id="author-1",
        text="hello",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_a_token_shared_just_before_we_take_the_lease_is_used_not_fetched_again(stack, cxone_sim):
    """The race, forced: container B finds SSM empty; before B's lease request lands, container A
    takes the lease, fetches, shares its token and releases. B then gets the lease and must find
    A's token in SSM rather than fetch a second one."""
    clock = Clock()
    container_a = new_container(cxone_sim.url, clock)
    real = boto3.client("dynamodb")
    raced: list[bool] = []

    class RacingDynamoDB:
        def __getattr__(self, name):
            return getattr(real, name)

        def put_item(self, **request):
            if not raced and request["Item"]["pk"]["S"].startswith("lease#"):
                raced.append(True)
                container_a.tokens.get(container_a.settings.primary_environment, budget())
            return real.put_item(**request)

    container_b = new_container(cxone_sim.url, clock, dynamodb=RacingDynamoDB())
    token_b = container_b.tokens.get(container_b.settings.primary_environment, budget())

    assert raced == [True]
    assert len(token_requests(cxone_sim)) == 1
    boto3.client("ssm").delete_parameter(Name=f"{PREFIX}/primary")  # B keeps A's token in memory
    assert container_b.tokens.get(container_b.settings.primary_environment, budget()) == token_b
    assert len(token_requests(cxone_sim)) == 1
    assert token_b.value == container_a.tokens.get(container_a.settings.primary_environment, budget()).value


def test_a_holder_that_gives_up_after_sharing_is_not_fetched_twice(stack, cxone_sim):
    """Waiting for a holder, we take the lease over; the holder's token reached SSM just before."""
    clock = Clock()
    holder = token_lease(clock, "slow-holder")
    assert holder.acquire("primary")
    delivered = AccessToken("token-from-the-holder", clock.now + 3600)
    real = boto3.client("dynamodb")

    class HolderFinishesAtOurTakeover:
        def __getattr__(self, name):
            return getattr(real, name)

        def put_item(self, **request):
            if request["Item"]["pk"]["S"].startswith("lease#") and holder.release("primary"):
                SsmTokenCache(boto3.client("ssm"), PREFIX).save("primary", delivered)
            return real.put_item(**request)

    gateway = new_container(
        cxone_sim.url, clock, sleeper=lambda _s: None, dynamodb=HolderFinishesAtOurTakeover()
    )
    token = gateway.tokens.get(gateway.settings.primary_environment, budget())

    assert token == delivered
    assert token_requests(cxone_sim) == []


# After a 401 -------------------------------------------------------------------------------


def test_a_refresh_returns_the_token_another_caller_already_put_in_memory(stack, cxone_sim):
    gateway = new_container(cxone_sim.url, Clock())
    environment = gateway.settings.primary_environment
    first = gateway.tokens.get(environment, budget())
    replaced = gateway.tokens.refresh_after_unauthorized(environment, first, budget())  # one caller's 401

    # A second caller that saw the same 401 with the same old token shares the replacement.
    shared = gateway.tokens.refresh_after_unauthorized(environment, first, budget())

    assert shared == replaced and shared.value != first.value
    assert len(token_requests(cxone_sim)) == 2


def test_a_refresh_takes_a_newer_token_from_ssm_and_keeps_it_in_memory(stack, cxone_sim):
    clock = Clock()
    ours = new_container(cxone_sim.url, clock)
    theirs = new_container(cxone_sim.url, clock)
    environment = ours.settings.primary_environment
    rejected = ours.tokens.get(environment, budget())
    newer = theirs.tokens.refresh_after_unauthorized(environment, rejected, budget())  # shares via SSM

    taken = ours.tokens.refresh_after_unauthorized(environment, rejected, budget())
    boto3.client("ssm").delete_parameter(Name=f"{PREFIX}/primary")
    again = ours.tokens.get(environment, budget())  # from memory: SSM is empty now

    assert taken == newer == again
    assert len(token_requests(cxone_sim)) == 2


def test_a_refresh_in_a_container_that_holds_no_token_yet_fetches_one(stack, cxone_sim, captured_logs):
    gateway = new_container(cxone_sim.url, Clock())
    environment = gateway.settings.primary_environment
    stale = AccessToken("a-token-from-elsewhere", expires_at=Clock().now + 3600)

    token = gateway.tokens.refresh_after_unauthorized(environment, stale, budget())

    assert token.value != stale.value and len(token_requests(cxone_sim)) == 1
    logged = [
        json.loads(line) for line in captured_logs.getvalue().splitlines() if "access token refused" in line
    ]
    assert [(line["message"], line["environment"]) for line in logged] == [
        ("access token refused; fetching a new one", "primary")
    ]


def test_a_refresh_waiting_for_a_holder_ignores_the_rejected_token_still_in_ssm(stack, cxone_sim):
    clock = Clock()
    ours = new_container(cxone_sim.url, clock, sleeper=lambda _s: None)
    environment = ours.settings.primary_environment
    rejected = ours.tokens.get(environment, budget())  # in memory and in SSM
    assert token_lease(clock, "other-container").acquire("primary")  # someone else is refreshing

    token = ours.tokens.refresh_after_unauthorized(environment, rejected, budget())

    # It waited out the lease (the rejected token in SSM is no answer), then fetched a new one.
    assert token.value != rejected.value
    assert len(token_requests(cxone_sim)) == 2


def test_a_refresh_waits_for_a_fetch_in_progress_in_the_same_container(stack, cxone_sim):
    """One thread is fetching (it holds the environment's lock); a 401 in another thread must wait
    for it and take its token, not fetch a second one. Ordered by events, not timing."""
    fetching, release = threading.Event(), threading.Event()
    credential_reads: list[str] = []

    def slow_credentials(environment):
        credential_reads.append(environment.name)
        fetching.set()
        assert release.wait(10)
        return sim_credentials(environment)

    gateway = CxoneGateway(
        settings_for(cxone_sim.url),
        ssm_client=boto3.client("ssm"),
        dynamodb_client=boto3.client("dynamodb"),
        credentials=slow_credentials,
        clock=Clock(),
        sleeper=_no_waiting,
    )
    environment = gateway.settings.primary_environment
    results: dict[str, AccessToken] = {}
    getter = threading.Thread(target=lambda: results.update(get=gateway.tokens.get(environment, budget())))
    getter.start()
    assert fetching.wait(10)
    old = AccessToken("old-token-that-got-a-401", expires_at=Clock().now + 3600)
    refresher = threading.Thread(
        target=lambda: results.update(
            refresh=gateway.tokens.refresh_after_unauthorized(environment, old, budget())
        )
    )
    refresher.start()
    refresher.join(timeout=1.0)  # it must be waiting on the lock, not off fetching on its own
    release.set()
    getter.join(timeout=10)
    refresher.join(timeout=10)

    assert credential_reads == ["primary"]
    assert results["refresh"] == results["get"]
    assert len(token_requests(cxone_sim)) == 1


def test_a_holder_that_never_delivers_is_reported_before_we_fetch_anyway(stack, cxone_sim, captured_logs):
    clock = Clock()
    assert token_lease(clock, "crashed").acquire("primary")
    gateway = new_container(cxone_sim.url, clock, sleeper=lambda _s: None)

    gateway.tokens.get(gateway.settings.primary_environment, budget())

    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    held, fetched = (
        [(line["level"], line.get("environment")) for line in lines if line["message"] == message]
        for message in ("token lease still held; fetching anyway", "fetched CXone access token")
    )
    assert (held, fetched) == ([("WARNING", "primary")], [("INFO", "primary")])


# What mutation testing found untested ------------------------------------------------------


def _id_token(claims: object) -> str:
    """A JWT as CXone sends it: base64url parts without their padding."""
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"header.{payload}.signature"


@pytest.mark.parametrize("tenant", ["t", "tenant-1", "tenant-12", "tenant-123"])  # every padding length
def test_the_tenant_is_read_from_an_unpadded_id_token(tenant):
    assert _tenant_from_id_token(_id_token({"tenantId": tenant})) == tenant


@pytest.mark.parametrize(
    "id_token", [None, "", "no-dots-at-all", "one.dot", "a.%%%.c", _id_token(["a", "list"]), _id_token({})]
)
def test_an_id_token_without_a_readable_tenant_gives_none(id_token):
    assert _tenant_from_id_token(id_token) is None


class ScriptedHttp:
    """Answers each request with the next body, 200, and records what was asked."""

    def __init__(self, *bodies: bytes) -> None:
        self.bodies = list(bodies)
        self.calls: list[tuple[str, str]] = []

    def request(self, method: str, url: str, budget: TimeBudget, **_: object) -> requests.Response:
        self.calls.append((method, url))
        response = requests.Response()
        response.status_code, response.url = 200, url
        response._content = self.bodies.pop(0)
        return response


DISCOVERY_BODY = json.dumps({"token_endpoint": "https://auth.example/token"}).encode()
TOKEN_BODY = json.dumps({"access_token": "t-1", "expires_in": 3600}).encode()


def _fetcher(http: ScriptedHttp) -> tuple[TokenFetcher, CxoneEnvironment]:
    environment = settings_for("https://auth.example").primary_environment
    return TokenFetcher(http, lambda _environment: Credentials("id", "secret", "ak", "as")), environment


def test_discovery_is_asked_once_per_auth_server_with_a_get():
    http = ScriptedHttp(DISCOVERY_BODY, TOKEN_BODY, TOKEN_BODY)
    fetcher, environment = _fetcher(http)
    fetcher.fetch(environment, budget())
    fetcher.fetch(environment, budget())
    assert http.calls == [
        ("GET", environment.auth_url + "/.well-known/openid-configuration"),
        ("POST", "https://auth.example/token"),
        ("POST", "https://auth.example/token"),
    ]


def test_an_unreadable_discovery_document_is_a_passing_fault_of_the_auth_server():
    fetcher, environment = _fetcher(ScriptedHttp(b"<html>maintenance</html>"))
    with pytest.raises(RetryableUpstreamError) as caught:
        fetcher.token_endpoint(environment, budget())
    assert caught.value.service == "cxone-auth"
    assert (
        str(caught.value) == "cxone-auth: unreadable JSON from /.well-known/openid-configuration (HTTP 200)"
    )


@pytest.mark.parametrize("document", [b"{}", b'{"token_endpoint": ""}', b'["token_endpoint"]'])
def test_a_discovery_document_without_a_token_endpoint_is_permanent(document):
    fetcher, environment = _fetcher(ScriptedHttp(document))
    with pytest.raises(PermanentUpstreamError) as caught:
        fetcher.token_endpoint(environment, budget())
    assert (caught.value.service, str(caught.value)) == (
        "cxone-auth",
        "cxone-auth: discovery document has no token_endpoint",
    )


def test_a_refresh_uses_a_replacement_held_in_memory_even_when_ssm_has_lost_it(stack, cxone_sim):
    gateway = new_container(cxone_sim.url, Clock())
    environment = gateway.settings.primary_environment
    held = gateway.tokens.get(environment, budget())
    boto3.client("ssm").delete_parameter(Name=f"{PREFIX}/primary")  # the shared copy is gone
    older = AccessToken("an-older-rejected-token", expires_at=held.expires_at)

    assert gateway.tokens.refresh_after_unauthorized(environment, older, budget()) == held
    assert len(token_requests(cxone_sim)) == 1


def test_a_refresh_satisfied_from_ssm_takes_no_lease_and_logs_no_fetch(stack, cxone_sim, captured_logs):
    clock = Clock()
    ours = new_container(cxone_sim.url, clock)
    theirs = new_container(cxone_sim.url, clock)
    environment = ours.settings.primary_environment
    rejected = ours.tokens.get(environment, budget())
    newer = theirs.tokens.refresh_after_unauthorized(environment, rejected, budget())
    captured_logs.truncate(0)
    captured_logs.seek(0)
    # Someone else holds the lease now: a refresh that wrongly went for it would wait or fetch.
    assert token_lease(clock, "other-container").acquire("primary")

    assert ours.tokens.refresh_after_unauthorized(environment, rejected, budget()) == newer
    assert "access token refused" not in captured_logs.getvalue()
    assert len(token_requests(cxone_sim)) == 2


class FailingRelease:
    """A DynamoDB client whose lease release (a conditional delete) fails."""

    def __init__(self, client: object, error: Exception) -> None:
        self._client, self._error = client, error

    def delete_item(self, **_: object) -> None:
        raise self._error

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://dynamodb.example"),
        ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "DeleteItem"),
    ],
    ids=["unreachable", "throttled"],
)
def test_a_lease_that_cannot_be_released_does_not_fail_the_token(stack, cxone_sim, error):
    dynamodb = FailingRelease(boto3.client("dynamodb"), error)
    gateway = new_container(cxone_sim.url, Clock(), dynamodb=dynamodb)
    token = gateway.tokens.get(gateway.settings.primary_environment, budget())
    assert token.value and len(token_requests(cxone_sim)) == 1


class RefusingTokenHttp(ScriptedHttp):
    """Discovery answers; the token request is refused with `status`."""

    def __init__(self, status: int) -> None:
        super().__init__(DISCOVERY_BODY)
        self.status = status

    def request(self, method: str, url: str, budget: TimeBudget, **kwargs: object) -> requests.Response:
        if method == "POST":
            self.calls.append((method, url))
            raise PermanentUpstreamError("cxone", "POST /token refused", status=self.status)
        return super().request(method, url, budget, **kwargs)


@pytest.mark.parametrize(("key_id", "key_secret"), [("ak", None), (None, "as"), (None, None), ("", "as")])
def test_a_password_grant_without_both_access_key_parts_asks_nothing(key_id, key_secret):
    http = ScriptedHttp()
    environment = settings_for("https://auth.example").primary_environment
    assert environment.grant_type == "password"
    fetcher = TokenFetcher(http, lambda _environment: Credentials("id", "secret", key_id, key_secret))
    with pytest.raises(AuthenticationError) as caught:
        fetcher.fetch(environment, budget())
    assert (caught.value.service, str(caught.value)) == (
        "cxone-auth",
        "cxone-auth: password grant needs access_key_id and secret",
    )
    assert http.calls == []


@pytest.mark.parametrize("status", [400, 403])
def test_a_refused_token_request_is_an_authentication_error_naming_the_environment(status):
    fetcher, environment = _fetcher(RefusingTokenHttp(status))
    with pytest.raises(AuthenticationError) as caught:
        fetcher.fetch(environment, budget())
    assert (caught.value.service, caught.value.status) == ("cxone-auth", status)
    assert str(caught.value) == f"cxone-auth: token request refused for environment primary (HTTP {status})"


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (b"<html>", RetryableUpstreamError, "cxone-auth: unreadable JSON from /token (HTTP 200)"),
        (b'{"token_type": "bearer"}', AuthenticationError, "cxone-auth: token response has no access_token"),
        (b'{"access_token": ""}', AuthenticationError, "cxone-auth: token response has no access_token"),
        (b'["access_token"]', AuthenticationError, "cxone-auth: token response has no access_token"),
    ],
)
def test_a_token_response_without_a_token_is_refused_by_name(body, error, message):
    fetcher, environment = _fetcher(ScriptedHttp(DISCOVERY_BODY, body))
    with pytest.raises(error) as caught:
        fetcher.fetch(environment, budget())
    assert (caught.value.service, str(caught.value)) == ("cxone-auth", message)


def test_every_token_in_a_token_response_is_scrubbed_from_logs_from_then_on():
    # Values new to this process (the scrubber's list of secrets lives as long as the process,
    # and a test run again in it must not find them already there), and none with a shape the
    # scrubber knows by itself (an id_token need not be a JWT).
    run = uuid.uuid4().hex[:8]
    tokens = {
        "access_token": f"access-{run}",
        "refresh_token": f"refresh-{run}",
        "id_token": f"opaque-id-{run}",
    }
    fetcher, environment = _fetcher(ScriptedHttp(DISCOVERY_BODY, json.dumps(tokens).encode()))
    fetcher.fetch(environment, budget())
    scrubbed = redact_text(" ".join(tokens.values()))
    assert not any(value in scrubbed for value in tokens.values())


@pytest.mark.parametrize(("answer", "lifetime"), [({}, 3600.0), ({"expires_in": 120}, 120.0)])
def test_a_token_expires_when_cxone_says_or_after_an_hour(answer, lifetime):
    body = json.dumps({"access_token": "access-5d2e", **answer}).encode()
    http = ScriptedHttp(DISCOVERY_BODY, body)
    environment = settings_for("https://auth.example").primary_environment
    fetcher = TokenFetcher(
        http, lambda _environment: Credentials("id", "secret", "ak", "as"), clock=lambda: 1000.0
    )
    assert fetcher.fetch(environment, budget()).expires_at == 1000.0 + lifetime


# The SSM cache, read and written ---------------------------------------------------------


class CountingSsm:
    """The SSM client, counting the token cache's reads."""

    def __init__(self, client: object) -> None:
        self._client, self.reads = client, 0

    def get_parameter(self, **kwargs: object) -> object:
        self.reads += 1
        return self._client.get_parameter(**kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)


def container_with_ssm(sim_url: str, clock: Clock, ssm: CountingSsm) -> CxoneGateway:
    """A new container whose SSM client is `ssm` (counting its reads, or failing)."""
    return CxoneGateway(
        settings_for(sim_url),
        ssm_client=ssm,
        dynamodb_client=boto3.client("dynamodb"),
        credentials=sim_credentials,
        clock=clock,
        sleeper=_no_waiting,
    )


def container_counting_ssm(sim_url: str, clock: Clock) -> tuple[CxoneGateway, CountingSsm]:
    ssm = CountingSsm(boto3.client("ssm"))
    return container_with_ssm(sim_url, clock, ssm), ssm


def test_a_cold_container_takes_a_fresh_token_from_ssm_without_the_lease(stack, cxone_sim):
    clock = Clock()
    first = new_container(cxone_sim.url, clock)
    environment = first.settings.primary_environment
    token = first.tokens.get(environment, budget())
    # Someone else holds the lease: a container that went for it would wait (and fail here).
    assert token_lease(clock, "other-container").acquire("primary")
    cold, ssm = container_counting_ssm(cxone_sim.url, clock)

    assert cold.tokens.get(environment, budget()) == token
    assert cold.tokens.get(environment, budget()) == token
    assert ssm.reads == 1  # then it answers from memory
    assert len(token_requests(cxone_sim)) == 1


def test_concurrent_callers_waiting_on_a_fetch_take_its_token_from_memory(stack, cxone_sim):
    """Callers that queued on the lock behind the one fetching find its token in memory, and
    read SSM no more than the fetcher did (its look before and after taking the lease)."""
    gateway, ssm = container_counting_ssm(cxone_sim.url, Clock())
    environment = gateway.settings.primary_environment
    fetching, release = threading.Event(), threading.Event()
    lock = gateway.tokens._lock(environment.name)
    waiting = threading.Semaphore(0)

    class SignallingLock:
        """The environment's lock, telling the test when a caller starts waiting for it."""

        def __enter__(self) -> None:
            if threading.current_thread() is not leader:
                waiting.release()
            lock.acquire()

        def __exit__(self, *_: object) -> None:
            lock.release()

    gateway.tokens._locks[environment.name] = SignallingLock()  # type: ignore[assignment]
    fetch = gateway.tokens._fetcher.fetch

    def held_fetch(*args: object) -> AccessToken:
        fetching.set()
        assert release.wait(10)
        return fetch(*args)  # type: ignore[arg-type]

    gateway.tokens._fetcher.fetch = held_fetch  # type: ignore[method-assign]
    results: list[AccessToken] = []
    leader = threading.Thread(target=lambda: results.append(gateway.tokens.get(environment, budget())))
    leader.start()
    assert fetching.wait(10)
    followers = [
        threading.Thread(target=lambda: results.append(gateway.tokens.get(environment, budget())))
        for _ in range(3)
    ]
    for follower in followers:
        follower.start()
    for _ in followers:
        assert waiting.acquire(timeout=10)  # each is at the lock, behind the fetch
    release.set()
    for thread in (leader, *followers):
        thread.join(timeout=10)

    assert len(results) == 4 and len({token.value for token in results}) == 1
    assert ssm.reads == 2
    assert len(token_requests(cxone_sim)) == 1


def test_a_cold_start_with_nothing_cached_logs_no_cache_warning(stack, cxone_sim, captured_logs):
    gateway = new_container(cxone_sim.url, Clock())
    gateway.tokens.get(gateway.settings.primary_environment, budget())
    assert "token cache unreadable" not in captured_logs.getvalue()


def test_a_cache_we_may_not_read_is_logged_and_costs_one_fetch(stack, cxone_sim, captured_logs):
    class DeniedSsm(CountingSsm):
        def get_parameter(self, **kwargs: object) -> object:
            raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetParameter")

    gateway = container_with_ssm(cxone_sim.url, Clock(), DeniedSsm(boto3.client("ssm")))
    assert gateway.tokens.get(gateway.settings.primary_environment, budget()).value
    # Read before and after taking the lease: both reads fail, both are told.
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines() if "unreadable" in line]
    assert {(line["message"], line["parameter"]) for line in lines} == {
        ("token cache unreadable", f"{PREFIX}/primary")
    }
    assert all("AccessDeniedException" in line["error"] for line in lines)
    assert len(token_requests(cxone_sim)) == 1


def test_the_cached_token_says_what_it_is_and_that_it_may_be_deleted(stack, cxone_sim):
    gateway = new_container(cxone_sim.url, Clock())
    gateway.tokens.get(gateway.settings.primary_environment, budget())
    [parameter] = boto3.client("ssm").describe_parameters()["Parameters"]
    assert (parameter["Name"], parameter["Type"]) == (f"{PREFIX}/primary", "SecureString")
    assert parameter["Description"] == "CXone access token cache (written by cxone-relay; safe to delete)"


def test_a_cache_write_that_fails_is_logged_and_the_token_still_used(stack, cxone_sim, captured_logs):
    class ReadOnlySsm(CountingSsm):
        def put_parameter(self, **kwargs: object) -> object:
            raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "PutParameter")

    gateway = container_with_ssm(cxone_sim.url, Clock(), ReadOnlySsm(boto3.client("ssm")))
    environment = gateway.settings.primary_environment
    token = gateway.tokens.get(environment, budget())

    assert gateway.tokens.get(environment, budget()) == token  # kept in memory all the same
    [line] = [json.loads(line) for line in captured_logs.getvalue().splitlines() if "not written" in line]
    assert (line["message"], line["parameter"], line["level"]) == (
        "token cache not written",
        f"{PREFIX}/primary",
        "WARNING",
    )
    assert "AccessDeniedException" in line["error"]


def test_a_token_read_from_the_cache_is_scrubbed_from_logs(stack, cxone_sim):
    value = f"cached-token-{uuid.uuid4().hex[:8]}"  # new to this process
    SsmTokenCache(boto3.client("ssm"), PREFIX).save("primary", AccessToken(value, Clock().now + 3600))
    gateway = new_container(cxone_sim.url, Clock())

    assert gateway.tokens.get(gateway.settings.primary_environment, budget()).value == value
    assert value not in redact_text(f"request failed with {value}")


class FailingAcquire(FailingRelease):
    """A DynamoDB client whose lease acquire (a conditional put) fails."""

    def put_item(self, **_: object) -> None:
        raise self._error

    def delete_item(self, **kwargs: object) -> object:
        return self._client.delete_item(**kwargs)  # type: ignore[attr-defined]


def test_a_lease_that_cannot_be_asked_for_is_logged_and_the_token_fetched(stack, cxone_sim, captured_logs):
    throttled = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutItem")
    dynamodb = FailingAcquire(boto3.client("dynamodb"), throttled)
    gateway = new_container(cxone_sim.url, Clock(), dynamodb=dynamodb)

    token = gateway.tokens.get(gateway.settings.primary_environment, budget())  # waiting would raise

    assert token.value and len(token_requests(cxone_sim)) == 1
    [line] = [json.loads(line) for line in captured_logs.getvalue().splitlines() if "lease" in line]
    assert (line["message"], line["level"]) == ("token lease unavailable; fetching without it", "WARNING")
    assert "ProvisionedThroughputExceededException" in line["error"]


def test_a_fetch_for_one_environment_never_holds_up_another(stack, cxone_sim):
    gateway = new_container(cxone_sim.url, Clock())
    primary = gateway.settings.primary_environment
    emea = primary.model_copy(update={"name": "emea"})  # another environment, on the same simulator
    fetching, release = threading.Event(), threading.Event()
    fetch = gateway.tokens._fetcher.fetch

    def held_fetch(environment: CxoneEnvironment, budget: TimeBudget) -> AccessToken:
        if environment.name == primary.name:
            fetching.set()
            assert release.wait(10)
        return fetch(environment, budget)

    gateway.tokens._fetcher.fetch = held_fetch  # type: ignore[method-assign]
    held = threading.Thread(target=lambda: gateway.tokens.get(primary, budget()))
    held.start()
    assert fetching.wait(10)
    other: list[AccessToken] = []
    getter = threading.Thread(target=lambda: other.append(gateway.tokens.get(emea, budget())))
    getter.start()
    getter.join(timeout=10)  # returns at once unless it waits on primary's lock
    finished_while_primary_was_held = not getter.is_alive()
    release.set()
    held.join(timeout=10)
    getter.join(timeout=10)

    assert finished_while_primary_was_held
    assert other and other[0].value


def test_a_failed_refresh_forgets_the_rejected_token(stack, cxone_sim):
    gateway = new_container(cxone_sim.url, Clock())
    environment = gateway.settings.primary_environment
    rejected = gateway.tokens.get(environment, budget())
    boto3.client("ssm").delete_parameter(Name=f"{PREFIX}/primary")
    cxone_sim.add_fault(status=400, path_prefix=TOKEN_PATH, count=1)

    with pytest.raises(AuthenticationError):
        gateway.tokens.refresh_after_unauthorized(environment, rejected, budget())

    # Not the rejected token, still unexpired, from memory: a new one.
    assert gateway.tokens.get(environment, budget()).value != rejected.value
    assert len(token_requests(cxone_sim)) == 2


def test_a_damaged_cache_is_logged_and_costs_one_fetch(stack, cxone_sim, captured_logs):
    boto3.client("ssm").put_parameter(Name=f"{PREFIX}/primary", Value="{not json", Type="SecureString")
    gateway = new_container(cxone_sim.url, Clock())

    assert gateway.tokens.get(gateway.settings.primary_environment, budget()).value

    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines() if "unreadable" in line]
    assert {(line["message"], line["level"], line["parameter"]) for line in lines} == {
        ("token cache unreadable", "WARNING", f"{PREFIX}/primary")
    }
    assert all("Expecting property name" in line["error"] for line in lines)
    assert len(token_requests(cxone_sim)) == 1


def test_the_cache_names_one_parameter_per_environment_under_the_prefix():
    assert SsmTokenCache(None, "/cxone-relay/tokens/").parameter_name("emea") == "/cxone-relay/tokens/emea"
    assert SsmTokenCache(None, "/cxone-relay/tokens").parameter_name("emea") == "/cxone-relay/tokens/emea"
    assert SsmTokenCache(None, "/relay/BOX/").parameter_name("emea") == "/relay/BOX/emea"  # only "/" goes
