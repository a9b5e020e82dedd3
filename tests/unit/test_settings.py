"""Settings fail fast, naming the variable that is missing or malformed."""

from __future__ import annotations

import json

import pytest

from cxone_relay.platform.errors import ConfigurationError
from cxone_relay.platform.settings import CoreSettings, CxoneSettings

CORE = {
    "AUDIT_TABLE": "audit",
    "STATE_TABLE": "state",
    "IDEMPOTENCY_TABLE": "idem",
    "PII_HASH_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:k",
}
CXONE = CORE | {
    "CXONE_ENVIRONMENTS": json.dumps([{"name": "primary", "dfo_channel_id": "sms"}, {"name": "emea"}]),
    "CXONE_DEFAULT_CREDENTIALS_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:c",
    "CXONE_TOKEN_PARAMETER_PREFIX": "/cxone-relay/dev/cxone-token",
}


def test_valid_environment_parses_with_defaults():
    settings = CxoneSettings.from_env(CXONE)
    assert settings.audit_retention_days == 400
    assert settings.token_refresh_margin_seconds == 300
    assert [env.name for env in settings.cxone_environments] == ["primary", "emea"]
    assert settings.primary_environment.auth_url == "https://cxone.niceincontact.com"
    assert settings.environment("emea").grant_type == "password"


def test_missing_variable_is_named():
    environ = dict(CORE)
    del environ["AUDIT_TABLE"]
    with pytest.raises(ConfigurationError, match="AUDIT_TABLE"):
        CoreSettings.from_env(environ)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CXONE_ENVIRONMENTS", "[{not json"),
        ("CXONE_ENVIRONMENTS", json.dumps([{"name": "x", "grant_type": "implicit"}])),
        ("CXONE_ENVIRONMENTS", json.dumps([{"name": "x", "api_base_url": "ftp://nope"}])),
        ("CXONE_ENVIRONMENTS", "[]"),
        ("TOKEN_REFRESH_MARGIN_SECONDS", "soon"),
        ("DEFAULT_PHONE_REGION", "usa"),
        ("CXONE_TOKEN_PARAMETER_PREFIX", "no-leading-slash"),
    ],
)
def test_malformed_variable_is_named(name, value):
    with pytest.raises(ConfigurationError, match=name):
        CxoneSettings.from_env(CXONE | {name: value})


def test_empty_variable_means_default():
    assert CoreSettings.from_env(CORE | {"AUDIT_RETENTION_DAYS": ""}).audit_retention_days == 400


OPT_OUT = CXONE | {
    "DEAD_LETTER_QUEUE_URL": "https://sqs/dlq",
    "CXONE_ENVIRONMENTS": json.dumps(
        [{"name": "primary", "dnc_group_id": "1"}, {"name": "emea", "dnc_group_id": "7"}]
    ),
}


def test_the_opt_out_consumer_reads_its_dnc_error_phrases():
    from cxone_relay.workflows.consent.rules import ErrorRules
    from cxone_relay.workflows.consent.settings import OptOutConsumerSettings

    assert OptOutConsumerSettings.from_env(OPT_OUT).error_rules() == ErrorRules()
    custom = OptOutConsumerSettings.from_env(
        OPT_OUT
        | {"DNC_ALREADY_LISTED_ERRORS": '["Bereits vorhanden"]', "DNC_PERMANENT_ERRORS": '["Ungültig"]'}
    )
    assert custom.error_rules() == ErrorRules(("bereits vorhanden",), ("ungültig",))


@pytest.mark.parametrize(
    ("environments", "problem"),
    [
        ([{"name": "primary", "dnc_group_id": "1"}, {"name": "emea"}], "emea has no dnc_group_id"),
        ([{"name": "primary", "dnc_group_id": "1"}, {"name": "primary", "dnc_group_id": "7"}], "unique"),
    ],
)
def test_the_opt_out_consumer_fails_fast_without_a_dnc_group_everywhere(environments, problem):
    from cxone_relay.workflows.consent.settings import OptOutConsumerSettings

    with pytest.raises(ConfigurationError, match=problem):
        OptOutConsumerSettings.from_env(OPT_OUT | {"CXONE_ENVIRONMENTS": json.dumps(environments)})


def test_the_consent_api_needs_its_queue():
    from cxone_relay.workflows.consent.settings import ConsentApiSettings

    with pytest.raises(ConfigurationError, match="OPT_OUT_QUEUE_URL"):
        ConsentApiSettings.from_env(CORE)
