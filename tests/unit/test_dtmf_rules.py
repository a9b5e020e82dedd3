"""The DTMF rules that are configuration or time: tone bounds, settings that fail fast, deadlines,
latency, and the audit payload's shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cxone_relay.platform.errors import ConfigurationError, InvalidFields
from cxone_relay.platform.transport import TimeBudget
from cxone_relay.workflows.dtmf.models import QueuedDtmf
from cxone_relay.workflows.dtmf.processor import MAX_RESPONSE_CHARS, audit_payload
from cxone_relay.workflows.dtmf.rules import ToneBounds, ToneRules, latency_ms, seconds_left
from cxone_relay.workflows.dtmf.settings import DtmfApiSettings, DtmfConsumerSettings
from cxone_relay.workflows.dtmf.webhook import capped

CORE = {
    "AUDIT_TABLE": "audit",
    "STATE_TABLE": "state",
    "IDEMPOTENCY_TABLE": "idem",
    "PII_HASH_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:k",
}
API = CORE | {"DTMF_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dtmf"}
CONSUMER = CORE | {
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dtmf-dlq",
    "CXONE_ENVIRONMENTS": '[{"name": "primary"}]',
    "CXONE_DEFAULT_CREDENTIALS_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:c",
    "CXONE_TOKEN_PARAMETER_PREFIX": "/cxone-relay/dev/cxone-token",
}
RULES = ToneRules(duration=ToneBounds(100, 40, 1000), spacing=ToneBounds(50, 30, 500))


# Tone bounds ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "ok"), [(39, False), (40, True), (41, True), (999, True), (1000, True), (1001, False)]
)
def test_a_tone_is_within_its_bounds_inclusive(given, ok):
    problem = ToneBounds(100, 40, 1000).problem("tone_duration_ms", given)
    if ok:
        assert problem is None
    else:
        assert problem is not None
        assert (problem.field, problem.message) == ("tone_duration_ms", "must be from 40 to 1000 ms")


@pytest.mark.parametrize(("default", "low", "high"), [(39, 40, 1000), (1001, 40, 1000), (50, 60, 40)])
def test_a_default_outside_its_bounds_is_refused(default, low, high):
    with pytest.raises(ValueError) as refused:
        ToneBounds(default, low, high)
    assert str(refused.value) == f"default {default} must lie within {low}..{high} (inclusive)"


@pytest.mark.parametrize(("default", "low", "high"), [(40, 40, 1000), (1000, 40, 1000), (7, 7, 7)])
def test_a_default_on_a_bound_is_allowed(default, low, high):
    assert ToneBounds(default, low, high).default == default


def test_absent_tones_take_their_defaults_and_given_ones_are_kept():
    assert RULES.resolve(None, None) == (100, 50)
    assert RULES.resolve(40, None) == (40, 50)
    assert RULES.resolve(None, 500) == (100, 500)
    assert RULES.resolve(1000, 30) == (1000, 30)


def test_every_tone_out_of_bounds_is_named_in_order():
    with pytest.raises(InvalidFields) as both:
        RULES.resolve(39, 501)
    assert [(p.field, p.message) for p in both.value.problems] == [
        ("tone_duration_ms", "must be from 40 to 1000 ms"),
        ("tone_spacing_ms", "must be from 30 to 500 ms"),
    ]
    with pytest.raises(InvalidFields) as spacing:
        RULES.resolve(100, 29)
    assert [p.field for p in spacing.value.problems] == ["tone_spacing_ms"]


# Time ---------------------------------------------------------------------------------------


def test_seconds_left_counts_down_to_the_deadline_and_below():
    assert seconds_left(100.0, 99.25) == 0.75
    assert seconds_left(100.0, 100.0) == 0
    assert seconds_left(100.0, 101.5) == -1.5


def test_latency_is_milliseconds_since_accept_and_never_negative():
    assert latency_ms(1000.0, 1000.25) == 250.0
    assert latency_ms(1000.0, 1000.0) == 0.0
    assert latency_ms(1000.0, 999.5) == 0.0


def test_a_queued_request_expires_timeout_ms_after_it_was_accepted():
    message = queued(timeout_ms=2500, accepted_at="2026-11-24T12:00:00+00:00")
    assert message.deadline == datetime(2026, 11, 24, 12, 0, 2, 500000, tzinfo=UTC).timestamp()
    # A naive timestamp is read as UTC.
    assert queued(accepted_at="2026-11-24T12:00:00").deadline == message.deadline - 2.5 + 5


# Settings -----------------------------------------------------------------------------------


def test_api_settings_default_to_100_and_50_ms_within_40_to_1000():
    rules = DtmfApiSettings.from_env(API).tone_rules()
    assert rules == ToneRules(ToneBounds(100, 40, 1000), ToneBounds(50, 40, 1000))


def test_api_settings_read_every_tone_variable():
    rules = DtmfApiSettings.from_env(
        API
        | {
            "DTMF_TONE_DURATION_MS": "120",
            "DTMF_MIN_TONE_DURATION_MS": "80",
            "DTMF_MAX_TONE_DURATION_MS": "200",
            "DTMF_TONE_SPACING_MS": "70",
            "DTMF_MIN_TONE_SPACING_MS": "60",
            "DTMF_MAX_TONE_SPACING_MS": "90",
        }
    ).tone_rules()
    assert rules == ToneRules(ToneBounds(120, 80, 200), ToneBounds(70, 60, 90))


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"DTMF_TONE_DURATION_MS": "30"}, "DTMF_TONE_DURATION_MS"),
        ({"DTMF_MIN_TONE_DURATION_MS": "150"}, "DTMF_MIN_TONE_DURATION_MS"),
        ({"DTMF_MAX_TONE_DURATION_MS": "99"}, "DTMF_MAX_TONE_DURATION_MS"),
        ({"DTMF_TONE_SPACING_MS": "1001"}, "DTMF_TONE_SPACING_MS"),
        ({"DTMF_MIN_TONE_SPACING_MS": "51"}, "DTMF_MIN_TONE_SPACING_MS"),
        ({"DTMF_MAX_TONE_SPACING_MS": "49"}, "DTMF_MAX_TONE_SPACING_MS"),
        ({"DTMF_TONE_DURATION_MS": "fast"}, "DTMF_TONE_DURATION_MS"),
        ({"DTMF_MAX_TONE_SPACING_MS": "0"}, "DTMF_MAX_TONE_SPACING_MS"),
        ({"DTMF_MAX_TONE_DURATION_MS": "10001"}, "DTMF_MAX_TONE_DURATION_MS"),
    ],
)
def test_api_settings_fail_fast_naming_the_variable(variables, named):
    with pytest.raises(ConfigurationError, match=named):
        DtmfApiSettings.from_env(API | variables)


def test_api_settings_need_the_queue():
    environ = dict(API)
    del environ["DTMF_QUEUE_URL"]
    with pytest.raises(ConfigurationError, match="DTMF_QUEUE_URL"):
        DtmfApiSettings.from_env(environ)


def test_the_webhook_is_optional_and_must_be_an_http_url():
    assert (
        DtmfConsumerSettings.from_env(CONSUMER | {"DTMF_AUDIT_WEBHOOK_URL": ""}).dtmf_audit_webhook_url
        is None
    )
    configured = DtmfConsumerSettings.from_env(
        CONSUMER | {"DTMF_AUDIT_WEBHOOK_URL": "https://audit.test/hook/"}
    )
    assert configured.dtmf_audit_webhook_url == "https://audit.test/hook"
    with pytest.raises(ConfigurationError, match="DTMF_AUDIT_WEBHOOK_URL"):
        DtmfConsumerSettings.from_env(CONSUMER | {"DTMF_AUDIT_WEBHOOK_URL": "ftp://audit.test"})


# The audit payload --------------------------------------------------------------------------


def queued(**fields) -> QueuedDtmf:
    return QueuedDtmf.model_validate(
        {
            "id": "dtmf-1",
            "interaction_id": "session-1",
            "digits": "12#",
            "timeout_ms": 5000,
            "sequence_matrix_key": "main-menu",
            "node_transition_flag": True,
            "tone_duration_ms": 100,
            "tone_spacing_ms": 50,
            "accepted_at": "2026-11-24T12:00:00Z",
        }
        | fields
    )


def test_the_audit_payload_holds_the_seed_designs_fields():
    payload = audit_payload(
        queued(),
        outcome="sent",
        now=datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=UTC).timestamp(),
        cxone_status=202,
        cxone_response={"ok": True},
        latency=123.456,
    )
    assert payload == {
        "request_id": "dtmf-1",
        "timestamp": "2026-11-24T12:00:00.123Z",
        "interaction_id": "session-1",
        "digits": "12#",
        "timeout_ms": 5000,
        "sequence_matrix_key": "main-menu",
        "node_transition_flag": True,
        "tone_duration_ms": 100,
        "tone_spacing_ms": 50,
        "latency_ms": 123.5,
        "cxone_status": 202,
        "cxone_response": {"ok": True},
        "validation_result": "valid",
        "outcome": "sent",
    }


def test_cxone_errors_keep_field_and_code_only_and_large_answers_are_left_out():
    def response_of(body):
        return audit_payload(
            queued(), outcome="refused", now=0, cxone_status=400, cxone_response=body, latency=None
        )["cxone_response"]

    errors = [{"field": "dtmfSequence", "errorCode": "Invalid", "message": "echoes 4155552671"}] * 7
    assert response_of({"errors": errors}) == {
        "errors": [{"field": "dtmfSequence", "errorCode": "Invalid"}] * 5
    }
    assert response_of({"errors": ["not an object"]}) == {"errors": []}
    assert response_of(None) == {}
    fits = {"text": "x" * (MAX_RESPONSE_CHARS - 12)}
    assert response_of(fits) == fits
    assert response_of({"text": "x" * MAX_RESPONSE_CHARS}) == {
        "omitted": f"larger than {MAX_RESPONSE_CHARS} characters"
    }


# The webhook's allowance ----------------------------------------------------------------------


def test_the_webhooks_allowance_ends_at_its_cap_or_the_invocations_end_whichever_is_sooner():
    now = [100.0]
    capped_budget = capped(TimeBudget.fixed(30, clock=lambda: now[0]), 8.0, clock=lambda: now[0])
    assert capped_budget.usable_seconds() == 8.0
    now[0] = 103.0
    assert capped_budget.usable_seconds() == 5.0
    short = capped(TimeBudget.fixed(2, clock=lambda: now[0]), 8.0, clock=lambda: now[0])
    assert short.usable_seconds() == 2.0
