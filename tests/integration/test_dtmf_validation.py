"""Every DTMF validation rule at its boundaries, through the API handler: a valid value is queued
(202), an invalid one is 422 naming its field (400 for a body that is not one JSON object), and a
refused request is audited, counted and never queued, so it never reaches CXone."""

from __future__ import annotations

import json

import pytest

from local.builders import dtmf_request, emf_metrics
from tests.integration.dtmf_harness import DtmfHarness


@pytest.fixture
def dtmf(stack, monkeypatch) -> DtmfHarness:
    return DtmfHarness(stack, None, None, monkeypatch, consumer=False)


def refused(dtmf: DtmfHarness, body, field: str) -> dict:
    """Post, expect 422 naming `field`, and check nothing was queued."""
    before = dtmf.depth()
    status, answer = dtmf.post(body)
    assert (status, answer["error"]) == (422, "validation_failed"), answer
    assert field in [problem["field"] for problem in answer["fields"]], answer
    assert dtmf.depth() == before
    return answer


def accepted(dtmf: DtmfHarness, body) -> dict:
    status, answer = dtmf.post(body)
    assert status == 202, answer
    [queued] = [q for q in dtmf.queued() if q["id"] == answer["id"]]
    return queued


# digits: 1 to 16 of ASCII 0-9, * and # ----------------------------------------------------------


@pytest.mark.parametrize("digits", ["1", "0", "#", "*", "0123456789*#", "1" * 16, "*#" * 8])
def test_keypad_digits_of_1_to_16_are_accepted_exactly_as_sent(dtmf, digits):
    assert accepted(dtmf, dtmf_request(digits=digits))["digits"] == digits


@pytest.mark.parametrize(
    "digits",
    [
        "",  # 0 characters
        "1" * 17,  # 17
        "*" * 17,
        " 12",  # spaces are refused, not trimmed
        "12 ",
        "1 2",
        "\t1",
        "1\n",
        "12a",
        "A",
        "p",  # pause characters of dial strings are not keypad digits
        "w",
        ",",
        "+1",
        "1-2",
        "１２",  # full-width digits  # noqa: RUF001
        "٣",  # Arabic-Indic three
        "۳",  # Extended Arabic-Indic three
        "²",  # superscript two (str.isdigit says yes)
        "\u066d",  # Arabic five-pointed star, looks like *
        "＃",  # full-width number sign  # noqa: RUF001
        "1\u0000",
        "1\ud800",
    ],
)
def test_anything_else_in_digits_is_422_naming_digits(dtmf, digits):
    refused(dtmf, dtmf_request(digits=digits), "digits")


@pytest.mark.parametrize("value", [1234, 12.0, None, ["1"], {"d": "1"}, True])
def test_digits_must_be_a_string(dtmf, value):
    refused(dtmf, dtmf_request(digits=value), "digits")


# timeout_ms: an integer from 1000 to 30000 --------------------------------------------------------


@pytest.mark.parametrize("timeout_ms", [1000, 1001, 29999, 30000])
def test_timeouts_within_1000_to_30000_are_accepted(dtmf, timeout_ms):
    assert accepted(dtmf, dtmf_request(timeout_ms=timeout_ms))["timeout_ms"] == timeout_ms


@pytest.mark.parametrize(
    "timeout_ms", [999, 30001, 0, -1000, 10**30, "5000", 5000.0, 5000.5, True, None, "", [5000]]
)
def test_other_timeouts_are_422_naming_timeout_ms(dtmf, timeout_ms):
    refused(dtmf, dtmf_request(timeout_ms=timeout_ms), "timeout_ms")


# interaction_id and sequence_matrix_key: non-empty strings -------------------------------------


@pytest.mark.parametrize("field", ["interaction_id", "sequence_matrix_key"])
@pytest.mark.parametrize(
    "value", ["", "   ", 12345, None, True, "x" * 257, "a\u0000b", "a\ud800", "bell\u0007"]
)
def test_ids_must_be_non_empty_clean_strings(dtmf, field, value):
    refused(dtmf, dtmf_request(**{field: value}), field)


@pytest.mark.parametrize("field", ["interaction_id", "sequence_matrix_key"])
@pytest.mark.parametrize("value", ["1", "x" * 256, "session 42/b"])
def test_ids_of_1_to_256_characters_are_accepted(dtmf, field, value):
    assert accepted(dtmf, dtmf_request(**{field: value}))[field] == value


# node_transition_flag: a JSON boolean ---------------------------------------------------------


@pytest.mark.parametrize("flag", [True, False])
def test_node_transition_flag_is_true_or_false(dtmf, flag):
    assert accepted(dtmf, dtmf_request(node_transition_flag=flag))["node_transition_flag"] is flag


@pytest.mark.parametrize("flag", ["true", "false", 1, 0, "yes", None, 1.0, []])
def test_node_transition_flag_is_json_true_or_false_only(dtmf, flag):
    refused(dtmf, dtmf_request(node_transition_flag=flag), "node_transition_flag")


# Required fields --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["interaction_id", "digits", "timeout_ms", "sequence_matrix_key", "node_transition_flag"]
)
def test_every_required_field_is_named_when_missing(dtmf, field):
    body = dtmf_request()
    del body[field]
    refused(dtmf, body, field)


def test_every_invalid_field_is_named_not_just_the_first(dtmf):
    answer = refused(dtmf, dtmf_request(digits="x", timeout_ms=1, node_transition_flag="no"), "digits")
    assert {p["field"] for p in answer["fields"]} == {"digits", "timeout_ms", "node_transition_flag"}


def test_tones_out_of_bounds_are_all_named(dtmf):
    answer = refused(dtmf, dtmf_request(tone_duration_ms=1, tone_spacing_ms=5000), "tone_duration_ms")
    assert {p["field"] for p in answer["fields"]} == {"tone_duration_ms", "tone_spacing_ms"}
    assert "from 40 to 1000 ms" in answer["fields"][0]["message"]


# Tone duration and spacing: configured bounds (defaults 40 to 1000 ms) ------------------------------


@pytest.mark.parametrize("field", ["tone_duration_ms", "tone_spacing_ms"])
@pytest.mark.parametrize("value", [40, 41, 999, 1000])
def test_tones_within_the_default_bounds_are_sent_as_given(dtmf, field, value):
    assert accepted(dtmf, dtmf_request(**{field: value}))[field] == value


@pytest.mark.parametrize("field", ["tone_duration_ms", "tone_spacing_ms"])
@pytest.mark.parametrize("value", [39, 1001, 0, -50, "100", 100.0, True, [100]])
def test_tones_outside_the_bounds_or_not_integers_are_422(dtmf, field, value):
    refused(dtmf, dtmf_request(**{field: value}), field)


def test_absent_or_null_tones_take_the_configured_defaults(dtmf):
    queued = accepted(dtmf, dtmf_request(tone_duration_ms=None))
    assert (queued["tone_duration_ms"], queued["tone_spacing_ms"]) == (100, 50)


def test_tone_bounds_and_defaults_are_configuration(dtmf):
    dtmf.start_api(
        DTMF_TONE_DURATION_MS="120",
        DTMF_MIN_TONE_DURATION_MS="80",
        DTMF_MAX_TONE_DURATION_MS="200",
        DTMF_TONE_SPACING_MS="70",
        DTMF_MIN_TONE_SPACING_MS="60",
        DTMF_MAX_TONE_SPACING_MS="90",
    )
    for field, low, high in (("tone_duration_ms", 80, 200), ("tone_spacing_ms", 60, 90)):
        refused(dtmf, dtmf_request(**{field: low - 1}), field)
        refused(dtmf, dtmf_request(**{field: high + 1}), field)
        for value in (low, high):
            assert accepted(dtmf, dtmf_request(**{field: value}))[field] == value
    queued = accepted(dtmf, dtmf_request())
    assert (queued["tone_duration_ms"], queued["tone_spacing_ms"]) == (120, 70)


# Bodies that are not one JSON object ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ('{"digits": "12", ', "malformed_json"),
        ("", "malformed_json"),
        ("[]", "not_an_object"),
        (json.dumps([dtmf_request()]), "not_an_object"),
        ('{"timeout_ms": NaN}', "malformed_json"),
        (
            json.dumps(dtmf_request(sequence_matrix_key="clé"), ensure_ascii=False).encode("latin-1"),
            "not_utf8",
        ),
    ],
)
def test_a_body_that_is_not_one_json_object_is_400(dtmf, body, error):
    status, answer = dtmf.post(body)
    assert (status, answer["error"]) == (400, error)
    assert dtmf.depth() == 0


# What a refusal leaves behind -------------------------------------------------------------------


def test_a_refused_request_is_audited_counted_and_never_reaches_cxone(
    stack, cxone_sim, ticketing_sim, monkeypatch, capsys
):
    cxone_sim.add_agent_sessions(["session-1"])
    dtmf = DtmfHarness(stack, cxone_sim, ticketing_sim, monkeypatch)
    refused(dtmf, dtmf_request(digits="１２"), "digits")  # noqa: RUF001
    refused_request_id = dtmf.last_api_request_id
    dtmf.post("{")
    dtmf.drain()

    assert dtmf.sends() == [] and dtmf.played() == []
    invalid, malformed = dtmf.audit()
    assert (invalid["action"], invalid["outcome"]) == ("rejected", "rejected")
    assert invalid["reason"] == "invalid_fields"
    assert invalid["subject"] == refused_request_id  # under the API request: there is no id of ours yet
    assert invalid["details"]["validation_result"] == "invalid"
    [problem] = invalid["details"]["fields"]
    assert set(problem) == {"field", "message"} and problem["field"] == "digits" and problem["message"]
    assert "１２" not in json.dumps(invalid, default=str)  # noqa: RUF001 - what was sent is not kept
    assert (malformed["reason"], malformed["details"]["validation_result"]) == ("malformed_json", "invalid")
    metrics = [(name, dims.get("reason")) for name, dims in emf_metrics(capsys.readouterr().out)]
    assert metrics.count(("DtmfSubmitted", None)) == 2
    assert ("DtmfValidationFailed", "invalid_fields") in metrics
    assert ("DtmfValidationFailed", "malformed_json") in metrics
    assert "DtmfSent" not in [name for name, _ in metrics]
