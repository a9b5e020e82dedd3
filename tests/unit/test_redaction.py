"""Logs and audit text never hold raw phone numbers, tokens or secrets."""

from __future__ import annotations

import json

import pytest

from cxone_relay.platform.redaction import PhoneHasher, mask_phone, redact, redact_text, register_secret


def test_logger_masks_e164_and_national_numbers(captured_logs):
    from cxone_relay.platform.observability import logger

    logger.info("reply to +14155552671 or (415) 555-2671", extra={"sender": "+14155552671"})

    output = captured_logs.getvalue()
    assert "+14155552671" not in output
    assert "(415) 555-2671" not in output
    record = json.loads(output.strip().splitlines()[-1])
    # No part of the number beyond its last four digits, in any field we wrote (the line also
    # carries random request ids, which may hold any digits).
    written = f"{record['message']} {record['sender']}"
    assert "415" not in written and "555" not in written
    assert record["message"] == "reply to ***2671 or ***2671"
    assert record["sender"] == "***2671"


def test_logger_never_prints_tokens_or_secret_fields(captured_logs):
    from cxone_relay.platform.observability import logger

    register_secret("tok-9f8e7d6c5b4a")
    logger.info(
        "calling with tok-9f8e7d6c5b4a",
        extra={"access_token": "abc-not-registered", "headers": {"Authorization": "Bearer xyz.abc.def"}},
    )
    logger.warning("upstream said Authorization: Bearer zzz-secret-zzz")

    output = captured_logs.getvalue()
    for leaked in ("tok-9f8e7d6c5b4a", "abc-not-registered", "xyz.abc.def", "zzz-secret-zzz"):
        assert leaked not in output


def test_exception_text_is_redacted(captured_logs):
    from cxone_relay.platform.observability import logger

    try:
        raise ValueError("bad number 415.555.2671")
    except ValueError:
        logger.exception("failed")
    assert "415.555.2671" not in captured_logs.getvalue()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+44 20 7946 0958", "***0958"),
        ("+33612345678", "***5678"),
        ("415-555-2671", "***2671"),
        ("4155552671", "***2671"),
        ("call 14155552671 now", "call ***2671 now"),
        ("phone:14155552671", "phone:***2671"),
        ("uk:447911123456:mobile", "uk:***3456:mobile"),  # 12 digits between colons, but no ARN
        ("Call 4155552671.", "Call ***2671."),
        ("07700 900123", "***0123"),
        ("06 12 34 56 78", "***5678"),
        ("020 7946 0958", "***0958"),
        ("+44 (0)20 7946 0958", "***0958"),
        ("415 5552671", "***2671"),
        ("(020) 7946-0958 today", "***0958 today"),
    ],
)
def test_number_formats_are_masked(text, expected):
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-24T13:35:00.123Z",
        "order 12345",
        "v27.0",
        "batch of 25 records",
        "id 9f1c-44",
        "arn:aws:lambda:us-east-1:123456789012:function:cxone-relay-dev-sms-ingest",
        "2026-11-24 14:23:54,736+0000",
        "took 1179.72642299992 ms",
        "from 127.0.0.1:3000",
        "queue depth 12 of 100",
        "v1.2.3 build 20261124",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert redact_text(text) == text


def test_redact_replaces_secret_named_fields_whole():
    assert redact({"client_secret": "s3cr3t", "nested": [{"password": "pw"}], "count": 3}) == {
        "client_secret": "***",
        "nested": [{"password": "***"}],
        "count": 3,
    }


def test_phone_hasher_is_keyed_and_stable():
    one, other = PhoneHasher("key-one"), PhoneHasher("key-two")
    assert one.fingerprint("+14155552671") == one.fingerprint("+14155552671")
    assert one.fingerprint("+14155552671") != other.fingerprint("+14155552671")
    assert "4155552671" not in one.fingerprint("+14155552671")
    assert mask_phone("+14155552671") == "***2671"


def test_a_digest_is_keyed_and_keeps_its_parts_apart():
    one, other = PhoneHasher("key-one"), PhoneHasher("key-two")
    parts = ("+14155552671", "+14155550100", "Hi there")
    assert one.digest(*parts) == one.digest(*parts)
    assert one.digest(*parts) != other.digest(*parts)
    assert one.digest("ab", "c") != one.digest("a", "bc")
    assert "4155552671" not in one.digest(*parts) and len(one.digest(*parts)) == 32


@pytest.mark.parametrize(
    "uuid",
    [
        "76956397-6176-4d78-8e57-be06eee1267b",
        "12345678-1234-4234-9234-123456789012",
        "41555526-7141-4155-8526-714155552671",
    ],
)
def test_uuids_are_never_mistaken_for_numbers(uuid):
    text = f"sqs message {uuid} failed; reply to +14155552671"
    assert redact_text(text) == f"sqs message {uuid} failed; reply to ***2671"
    assert redact({"sqs_message_id": uuid}) == {"sqs_message_id": uuid}
