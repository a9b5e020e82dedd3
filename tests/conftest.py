"""Fixtures shared by every test: AWS on moto built from template.yaml, the simulators, log capture."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.loaders
import botocore.session
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from cxone_relay.platform.cxone.tokens import Credentials
from cxone_relay.platform.settings import CxoneEnvironment, CxoneSettings
from local.provision import Provisioned, provision
from local.template import LOCAL_EMEA_SECRET

SIM_CREDENTIALS = {
    "client_id": "relay-client",
    "client_secret": "relay-secret-value-0001",
    "access_key_id": "relay-access-key",
    "access_key_secret": "relay-access-secret-value-0002",
}
# The second CXone environment's own credentials (its secret is LOCAL_EMEA_SECRET).
EMEA_CREDENTIALS = {
    "client_id": "relay-emea-client",
    "client_secret": "relay-emea-secret-value-0003",
    "access_key_id": "relay-emea-access-key",
    "access_key_secret": "relay-emea-access-secret-value-0004",
}
TICKETING_KEY = "local-ticketing-key"
WEBHOOK_SECRET = "test-delivery-webhook-secret-0003"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock-ahead",
        type=int,
        default=0,
        metavar="DAYS",
        help="run with the wall clock DAYS days ahead (time.time, datetime.now; not the monotonic"
        " clock), to show that no test depends on today's date",
    )


def pytest_configure(config: pytest.Config) -> None:
    days = config.getoption("--clock-ahead")
    if days:
        import time_machine  # only for this run

        traveller = time_machine.travel(datetime.now(UTC) + timedelta(days=days), tick=True)
        traveller.start()
        config.add_cleanup(traveller.stop)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--clock-ahead"):
        return
    # The local stack's functions run under the Lambda emulator, a Go binary in processes of their
    # own, on the machine's clock: a handler a year ahead of it would see each invocation's
    # deadline a year gone. The same code runs in-process, shifted, in the unit and integration tests.
    skip = pytest.mark.skip(reason="the Lambda emulator keeps the machine's clock")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _one_botocore_loader() -> Iterator[None]:
    """Each test's mock_aws starts a new default boto3 session, and each session would read and
    parse botocore's service models again (megabytes of JSON): a fifth of an integration test's
    time. The models are read-only data, so the test process keeps one loader for every session,
    as one long-lived session would."""
    loaders: dict[str | None, botocore.loaders.Loader] = {}

    def shared(search_path_string: str | None = None) -> botocore.loaders.Loader:
        if search_path_string not in loaders:
            loaders[search_path_string] = botocore.loaders.create_loader(search_path_string)
        return loaders[search_path_string]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", shared)
        yield


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake AWS credentials and a clean Powertools cache for every test, so nothing reaches AWS
    and no secret read in one test answers another."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "CxoneRelay",
        "POWERTOOLS_DEV": "0",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    parameters.clear_caches()
    # Metrics a test added without a handler flushing them (a processor called directly) would
    # otherwise be flushed by the next test's handler, and counted there.
    from cxone_relay.platform.observability import metrics

    metrics.clear_metrics()
    yield
    parameters.clear_caches()


@pytest.fixture
def machine_time_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Sets the process's local time zone (TZ is the customer's to set on a function) for the
    test: a time written without its zone, or read as local, shows. UTC again after it."""

    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def local_time_not_utc(machine_time_zone: Callable[[str], None]) -> None:
    """A container on New York time."""
    machine_time_zone("America/New_York")


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def cxone_sim() -> Iterator[Any]:
    from local.simulators import CxoneSimulator

    sim = CxoneSimulator(credentials=[dict(SIM_CREDENTIALS), dict(EMEA_CREDENTIALS)])
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def ticketing_sim() -> Iterator[Any]:
    from local.simulators import TicketingSimulator

    sim = TicketingSimulator(api_key=TICKETING_KEY)
    sim.start()
    yield sim
    sim.stop()


def cxone_environments(sim_url: str, **overrides: Any) -> str:
    """The two CXone environments of the local stack, both on the simulator: `primary` (the DFO
    channel, DNC group 1, the stack's credentials secret; `overrides` change it) and `emea` (DNC
    group 7, credentials in a secret of its own)."""
    primary = {
        "name": "primary",
        "grant_type": "password",
        "auth_url": sim_url,
        "api_base_url": sim_url,
        "dfo_channel_id": "sms-channel",
        "dnc_group_id": "1",
    } | overrides
    emea = {
        "name": "emea",
        "grant_type": "password",
        "auth_url": sim_url,
        "api_base_url": sim_url,
        "credentials_secret_arn": LOCAL_EMEA_SECRET,
        "dnc_group_id": "7",
    }
    return json.dumps([primary, emea])


STATE_TABLE = "cxone-relay-local-StateTable"  # what provision() names the template's StateTable
TOKEN_PREFIX = "/cxone-relay/test/cxone-token"


def cxone_settings(sim_url: str, **environment: Any) -> CxoneSettings:
    """Settings of a function that calls CXone, pointed at the simulator (one environment)."""
    return CxoneSettings.from_env(
        {
            "AUDIT_TABLE": "audit",
            "STATE_TABLE": STATE_TABLE,
            "IDEMPOTENCY_TABLE": "idem",
            "PII_HASH_KEY_SECRET_ARN": "arn:pii",
            "CXONE_ENVIRONMENTS": cxone_environments(sim_url, **environment),
            "CXONE_DEFAULT_CREDENTIALS_SECRET_ARN": "arn:unused",
            "CXONE_TOKEN_PARAMETER_PREFIX": TOKEN_PREFIX,
            "TOKEN_REFRESH_MARGIN_SECONDS": "300",
        }
    )


def sim_credentials(environment: CxoneEnvironment) -> Credentials:
    return Credentials(**SIM_CREDENTIALS)


@pytest.fixture
def stack(aws: None) -> Provisioned:
    """Every table, queue and secret of template.yaml, created in moto from the template, and the
    second CXone environment's secret."""
    return provision(
        secret_values={
            "CxoneCredentialsSecret": json.dumps(SIM_CREDENTIALS),
            "TicketingApiKeySecret": json.dumps({"api_key": TICKETING_KEY}),
            "DeliveryWebhookSecret": json.dumps({"current": WEBHOOK_SECRET, "previous": ""}),
        },
        extra_secrets={LOCAL_EMEA_SECRET: json.dumps(EMEA_CREDENTIALS)},
    )


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything the shared logger writes, through its own (redacting) formatter."""
    from cxone_relay.platform.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    previous_level = logger.log_level
    logger.setLevel("DEBUG")
    yield stream
    logger.setLevel(previous_level)
    logger._logger.removeHandler(handler)
