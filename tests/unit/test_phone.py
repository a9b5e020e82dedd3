from __future__ import annotations

import pytest

from cxone_relay.platform.phone import InvalidPhoneNumber, normalise_e164


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+14155552671", "US", "+14155552671"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("1-415-555-2671", "US", "+14155552671"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+33 6 12 34 56 78", "US", "+33612345678"),
        ("06 12 34 56 78", "FR", "+33612345678"),
    ],
)
def test_valid_numbers_become_e164(raw, region, expected):
    assert normalise_e164(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("hello", "not a phone number"),
        ("123", "wrong length for its country"),
        ("+1 415 555 267", "wrong length for its country"),
        ("+1 099 555 2671", "not a valid number for its country"),
        ("+999 12345678", "unknown country code"),
    ],
)
def test_invalid_numbers_say_why(raw, reason):
    with pytest.raises(InvalidPhoneNumber) as caught:
        normalise_e164(raw, "US")
    assert caught.value.reason == reason
