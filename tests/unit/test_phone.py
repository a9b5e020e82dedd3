"""Numbers as people type them and systems send them, from several countries, to E.164 or to a
reason a caller can show."""

from __future__ import annotations

import pytest

from cxone_relay.platform.phone import (
    MAX_PHONE_TEXT,
    InvalidPhoneNumber,
    UnknownRegion,
    normalise_e164,
    normalise_region,
)
from local.builders import fullwidth


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        # United States: every way the issue lists, and a few more.
        ("+14155552671", "US", "+14155552671"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("1-415-555-2671", "US", "+14155552671"),
        ("415 555 2671", "US", "+14155552671"),
        ("  +1 415 555 2671\t", "US", "+14155552671"),
        ("tel:+1-415-555-2671", "US", "+14155552671"),
        ("TEL:+1-415-555-2671", "US", "+14155552671"),
        ("tel:+14155552671;ext=12", "US", "+14155552671"),
        ("tel:415-555-2671;phone-context=+1", "US", "+14155552671"),
        (fullwidth("+1 415 555 2671"), "US", "+14155552671"),
        (fullwidth("(415)555-2671"), "US", "+14155552671"),
        ("\u3000415-555-2671\u3000", "US", "+14155552671"),
        ("+1\u00a0415\u00a0555\u00a02671", "US", "+14155552671"),
        ("(415) 555-2671 ext. 9", "US", "+14155552671"),
        ("1-800-FLOWERS", "US", "+18003569377"),
        # United Kingdom: international, national, the international prefixes of the US and Europe.
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("+44 (0)20 7946 0958", "US", "+442079460958"),
        ("011 44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("0044 20 7946 0958", "GB", "+442079460958"),
        ("tel:+44-20-7946-0958", "GB", "+442079460958"),
        # France, Germany, Spain, Ireland, Brazil, Mexico, India, Japan, Australia.
        ("+33 6 12 34 56 78", "US", "+33612345678"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+49 30 901820", "US", "+4930901820"),
        ("030 901820", "DE", "+4930901820"),
        ("+34 612 34 56 78", "US", "+34612345678"),
        ("01 234 5678", "IE", "+35312345678"),
        ("+55 11 91234-5678", "US", "+5511912345678"),
        ("+52 55 1234 5678", "US", "+525512345678"),
        ("+91 98765 43210", "US", "+919876543210"),
        ("03-1234-5678", "JP", "+81312345678"),
        (fullwidth("03-1234-5678"), "JP", "+81312345678"),
        ("(02) 9374 4000", "AU", "+61293744000"),
    ],
)
def test_valid_numbers_become_e164(raw, region, expected):
    assert normalise_e164(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("", "US", "empty"),
        ("   ", "US", "empty"),
        ("\u3000", "US", "empty"),
        ("hello", "US", "not a phone number"),
        ("tel:", "US", "not a phone number"),
        ("tel:abc", "US", "not a phone number"),
        ("123", "US", "wrong length for its country"),
        ("2671", "US", "wrong length for its country"),
        ("+1 415 555 267", "US", "wrong length for its country"),
        ("+1 415 555 26711", "US", "wrong length for its country"),
        (fullwidth("001"), "US", "wrong length for its country"),
        # Possible (the right length) but not valid: no such area code or range.
        ("+1 099 555 2671", "US", "not a valid number for its country"),
        ("+1 123 456 7890", "US", "not a valid number for its country"),
        ("+1 555 555 0199", "US", "not a valid number for its country"),
        ("07700 900123", "GB", "not a valid number for its country"),
        ("+44 7700 900123", "US", "not a valid number for its country"),
        ("+999 12345678", "US", "unknown country code"),
        ("011 999 1234 5678", "US", "unknown country code"),
        ("+4", "US", "not a phone number"),
        ("1" * 30, "US", "too long"),
        ("1" * (MAX_PHONE_TEXT + 1), "US", "too long"),
    ],
)
def test_invalid_numbers_say_why(raw, region, reason):
    with pytest.raises(InvalidPhoneNumber) as caught:
        normalise_e164(raw, region)
    assert caught.value.reason == reason
    assert str(caught.value) == reason


def test_the_length_limit_counts_the_trimmed_text():
    uri = "tel:+14155552671;phone-context=example.com;x="
    at_limit = uri + "a" * (MAX_PHONE_TEXT - len(uri))
    assert len(at_limit) == MAX_PHONE_TEXT
    assert normalise_e164(at_limit, "US") == "+14155552671"
    assert normalise_e164(f"   {at_limit}   ", "US") == "+14155552671"  # spaces do not count
    with pytest.raises(InvalidPhoneNumber) as over:
        normalise_e164(at_limit + "a", "US")
    assert over.value.reason == "too long"
    # Measured before compatibility folding too (which may shorten it): the work stays bounded.
    folding = "+14155552671 " + "e\u0301" * 26
    assert len(folding) > MAX_PHONE_TEXT
    with pytest.raises(InvalidPhoneNumber) as long_before_folding:
        normalise_e164(folding, "US")
    assert long_before_folding.value.reason == "too long"


def test_the_default_region_applies_only_to_numbers_without_a_country():
    assert normalise_e164("+14155552671", "GB") == "+14155552671"
    assert normalise_e164("020 7946 0958", "GB") == "+442079460958"
    with pytest.raises(InvalidPhoneNumber):
        normalise_e164("020 7946 0958", "US")


@pytest.mark.parametrize(("raw", "expected"), [("GB", "GB"), ("gb", "GB"), (" us ", "US"), ("Fr", "FR")])
def test_regions_are_read_case_insensitively(raw, expected):
    assert normalise_region(raw) == expected


@pytest.mark.parametrize("raw", ["ZZ", "XX", "", "USA", "U"])
def test_unknown_regions_are_refused_with_a_reason(raw):
    with pytest.raises(UnknownRegion) as caught:
        normalise_region(raw)
    assert "ISO 3166-1" in caught.value.reason
