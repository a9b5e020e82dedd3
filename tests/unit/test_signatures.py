"""The delivery webhook's signature rules with an injected clock: the five-minute edge both ways,
malformed headers, several v1 values, and two secrets during a rotation."""

from __future__ import annotations

import json

import pytest

from cxone_relay.platform.errors import Unauthenticated
from cxone_relay.workflows.outbound_sms.signatures import SignatureVerifier, sign, signature

NOW = 1_800_000_000
BODY = b'{"messageId":"out-1","status":"delivered"}'


def verifier(*secrets: str, now: float = NOW) -> SignatureVerifier:
    return SignatureVerifier(lambda: list(secrets), clock=lambda: now)


def headers(value: str) -> dict[str, str]:
    return {"x-signature": value}


def test_the_header_is_t_and_the_hex_hmac_of_t_dot_body():
    assert sign("s3cret", BODY, NOW) == f"t={NOW},v1={signature('s3cret', NOW, BODY)}"
    # HMAC-SHA256("s3cret", "1800000000." + body), computed independently.
    import hashlib
    import hmac

    expected = hmac.new(b"s3cret", b"1800000000." + BODY, hashlib.sha256).hexdigest()
    assert signature("s3cret", NOW, BODY) == expected


@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 300])
def test_a_signature_within_five_minutes_either_way_is_accepted(offset):
    verifier("s3cret").verify(BODY, headers(sign("s3cret", BODY, NOW + offset)))


@pytest.mark.parametrize("offset", [-301, 301, -86400])
def test_a_signature_more_than_five_minutes_from_now_is_refused(offset):
    with pytest.raises(Unauthenticated, match=r"^t is more than 300 seconds from now$"):
        verifier("s3cret").verify(BODY, headers(sign("s3cret", BODY, NOW + offset)))


def test_the_tolerance_is_configurable():
    strict = SignatureVerifier(lambda: ["s3cret"], clock=lambda: NOW, tolerance_seconds=60)
    strict.verify(BODY, headers(sign("s3cret", BODY, NOW - 60)))
    with pytest.raises(Unauthenticated, match=r"^t is more than 60 seconds from now$"):
        strict.verify(BODY, headers(sign("s3cret", BODY, NOW - 61)))


MISSING = r"^no X-Signature header$"
MALFORMED = r"^X-Signature is not t=<seconds>,v1=<hex>$"
MISMATCH = r"^no v1 signature matches the body$"


@pytest.mark.parametrize(
    ("value", "why", "reason"),
    [
        ("", MISSING, "missing"),
        (f"t={NOW}", MALFORMED, "malformed"),
        ("v1=" + "a" * 64, MALFORMED, "malformed"),
        (f"t=-{NOW},v1=" + "a" * 64, MALFORMED, "malformed"),
        (f"t={NOW}.5,v1=" + "a" * 64, MALFORMED, "malformed"),
        (f"t={NOW},t={NOW},v1=" + "a" * 64, MALFORMED, "malformed"),
        (f"t={NOW}=1,t={NOW},v1=" + "a" * 64, MALFORMED, "malformed"),  # a t that is not seconds
        (f"t={NOW},v1=" + "a" * 63, MALFORMED, "malformed"),
        (f"t={NOW},v1=" + "g" * 64, MALFORMED, "malformed"),
        ("t=1234567890123,v1=" + "a" * 64, MALFORMED, "malformed"),  # 13 digits: not seconds
        ("t=123456789012,v1=" + "a" * 64, r"^t is more than 300 seconds from now$", "stale"),  # 12 digits
        (f"t={NOW},v1=" + "a" * 64, MISMATCH, "mismatch"),
    ],
)
def test_malformed_or_wrong_headers_are_refused_saying_why(value, why, reason, capsys):
    with pytest.raises(Unauthenticated, match=why):
        verifier("s3cret").verify(BODY, headers(value) if value else {})
    [counted] = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if "DeliveryWebhookUnauthenticated" in line
    ]
    assert (counted["reason"], counted["DeliveryWebhookUnauthenticated"]) == (reason, [1.0])


def test_items_are_read_with_spaces_around_them():
    verifier("s3cret").verify(BODY, headers(f" t={NOW} , v1={signature('s3cret', NOW, BODY)} "))


def test_an_altered_body_or_another_secret_does_not_match():
    good = sign("s3cret", BODY, NOW)
    with pytest.raises(Unauthenticated, match="no v1"):
        verifier("s3cret").verify(BODY + b" ", headers(good))
    with pytest.raises(Unauthenticated, match="no v1"):
        verifier("other").verify(BODY, headers(good))
    # The timestamp is covered too: the same v1 under another t fails.
    v1 = good.split("v1=")[1]
    with pytest.raises(Unauthenticated, match="no v1"):
        verifier("s3cret").verify(BODY, headers(f"t={NOW + 1},v1={v1}"))


def test_either_secret_verifies_during_a_rotation_and_any_v1_may_match():
    rotating = verifier("new-secret", "old-secret")
    rotating.verify(BODY, headers(sign("new-secret", BODY, NOW)))
    rotating.verify(BODY, headers(sign("old-secret", BODY, NOW)))
    both = f"t={NOW},v1={'0' * 64},v1={signature('old-secret', NOW, BODY).upper()}"
    rotating.verify(BODY, headers(both))
    with pytest.raises(Unauthenticated):
        verifier("new-secret").verify(BODY, headers(sign("old-secret", BODY, NOW)))


def test_no_secret_in_use_accepts_nothing():
    with pytest.raises(Unauthenticated, match="no v1"):
        verifier("").verify(BODY, headers(sign("", BODY, NOW)))
