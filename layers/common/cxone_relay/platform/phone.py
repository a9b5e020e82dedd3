"""Phone numbers in, E.164 out: one function every workflow uses, so numbers compare equal.

People and systems write numbers many ways: national formats with any separators, an
international prefix instead of a + (011 from the US, 00 from most of the world), `tel:` URIs
(RFC 3966, with parameters such as `;ext=` or `;phone-context=`), full-width or other
compatibility digits (a Japanese keyboard, a copy from a PDF), surrounding spaces. All of them
come out as the same E.164 text, or as InvalidPhoneNumber saying why not.
"""

from __future__ import annotations

import unicodedata

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

# What a channel may send as a number before it is parsed: digits with the usual separators,
# optionally a leading + or an opening parenthesis. Parsing then decides whether it is valid.
PHONE_TEXT_PATTERN = r"^[+(]?[0-9][0-9 ().-]*$"
# Room for a tel: URI with a parameter; no real number needs more.
MAX_PHONE_TEXT = 64


class InvalidPhoneNumber(ValueError):
    """The text is not a valid, dialable number; `reason` says why in words a caller can show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownRegion(ValueError):
    """The text is not a region (ISO 3166-1 alpha-2) that numbers can be read for."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}


def normalise_region(raw: str) -> str:
    """A region code as phonenumbers knows it ("gb" -> "GB"), or UnknownRegion."""
    region = raw.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise UnknownRegion("not a region phone numbers can be read for (ISO 3166-1 alpha-2, e.g. US)")
    return region


def normalise_e164(raw: str, default_region: str = "US") -> str:
    """Parse `raw` (E.164, national or international format, a tel: URI) and return it in E.164.

    Numbers without a leading + (or international prefix) are read as national numbers of
    `default_region`. Only numbers phonenumbers considers valid are accepted: a
    possible-but-unassigned range would never reach a handset, and storing it would pollute the
    consent ledger.
    """
    text = (raw or "").strip()
    if len(text) > MAX_PHONE_TEXT:  # checked before NFKC too, so its work stays bounded
        raise InvalidPhoneNumber("too long")
    # Full-width digits and plus signs, ligatures and other compatibility forms become ASCII.
    text = unicodedata.normalize("NFKC", text).strip()
    if not text:
        raise InvalidPhoneNumber("empty")
    if len(text) > MAX_PHONE_TEXT:
        raise InvalidPhoneNumber("too long")
    try:
        parsed = phonenumbers.parse(text, default_region)
    except NumberParseException as exc:
        raise InvalidPhoneNumber(_PARSE_REASONS.get(exc.error_type, "not a phone number")) from None
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidPhoneNumber("wrong length for its country")
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber("not a valid number for its country")
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
