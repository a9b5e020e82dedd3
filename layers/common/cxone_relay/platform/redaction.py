"""Keeping phone numbers, tokens and secrets out of logs and audit records.

Logs keep at most the last four digits of a number; audit keys use a keyed hash so a number can
be looked up by whoever holds the key without being readable by whoever reads the table.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from typing import Any

MASK = "***"

# International numbers: "+" then 7-15 digits, up to two separators between digits ("+44 (0)20 ...").
_INTERNATIONAL = re.compile(r"\+\d(?:[\s().-]{0,2}\d){6,14}")
# US-style national numbers: (415) 555-2671, 415-555-2671, 415.555.2671, 415 555 2671.
_NATIONAL = re.compile(r"(?<!\w)\(?\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}(?!\w|\.\d)")
# Other groupings (06 12 34 56 78, 020 7946 0958, 07700 900123): digit groups split by spaces,
# hyphens or parentheses; the replacement keeps it unless it holds 9-15 digits and is no date.
_GROUPED = re.compile(r"(?<![\w+.:/-])\(?\d[\d \t()-]{6,24}\d(?!\w|\.\d)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Bare digit runs long enough to be a subscriber number (CXone DNC records are digits only).
_BARE_DIGITS = re.compile(r"(?<![\w.])\d{10,15}(?!\w|\.\d)")
_ARN_BEFORE_ACCOUNT = re.compile(r"arn:[\w-]+:[\w-]+:[\w-]*:$")
_UUID = re.compile(
    r"(?<![0-9A-Fa-f])([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})(?![0-9A-Fa-f])"
)
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+")
_BASIC = re.compile(r"(?i)\bbasic\s+[A-Za-z0-9+/=]{8,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")

# Structured fields whose values are secret whatever they look like.
_SECRET_KEY = re.compile(
    r"(?i)(token|secret|password|passwd|authorization|api[_-]?key|credential|signature|cookie)"
)

_known_secrets: set[str] = set()
_known_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret value (an access token, a client secret) so it is scrubbed wherever it
    appears, even inside free text such as an exception message."""
    if value and len(value) >= 6:
        with _known_secrets_lock:
            _known_secrets.add(value)


def _last_four(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return MASK + digits[-4:]


def _bare_digits(match: re.Match[str]) -> str:
    # An AWS account id sits between colons in an ARN (arn:aws:lambda:region:123456789012:...);
    # masking it would cost every log line's function_arn and protect no one.
    text, start, end = match.string, match.start(), match.end()
    if (
        end - start == 12
        and text[end : end + 1] == ":"
        and _ARN_BEFORE_ACCOUNT.search(text, max(0, start - 80), start)
    ):
        return match.group(0)
    return _last_four(match)


def _grouped(match: re.Match[str]) -> str:
    digits = sum(char.isdigit() for char in match.group(0))
    if not 9 <= digits <= 15 or _DATE.search(match.group(0)):
        return match.group(0)
    return _last_four(match)


def mask_phone_numbers(text: str) -> str:
    # UUIDs (request, message and correlation ids) are never numbers, but their digit groups can
    # look like one ("76956397-6176-..."): they are set aside, whole, and the rest is masked.
    parts = _UUID.split(text)
    return "".join(part if index % 2 else _mask_numbers(part) for index, part in enumerate(parts))


def _mask_numbers(text: str) -> str:
    text = _INTERNATIONAL.sub(_last_four, text)
    text = _NATIONAL.sub(_last_four, text)
    text = _GROUPED.sub(_grouped, text)
    return _BARE_DIGITS.sub(_bare_digits, text)


def scrub_secrets(text: str) -> str:
    with _known_secrets_lock:
        secrets = sorted(_known_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _BEARER.sub("Bearer " + MASK, text)
    text = _BASIC.sub("Basic " + MASK, text)
    return _JWT.sub(MASK, text)


def redact_text(text: str) -> str:
    """Scrub secrets first (a token may contain digit runs), then mask phone numbers."""
    return mask_phone_numbers(scrub_secrets(text))


def redact(value: Any) -> Any:
    """Redact a structure for logging or auditing: secret-named fields are replaced whole,
    strings anywhere are scrubbed."""
    if isinstance(value, dict):
        return {
            key: MASK if isinstance(key, str) and _SECRET_KEY.search(key) and val else redact(val)
            for key, val in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def mask_phone(e164: str) -> str:
    """The displayable form of a number: its last four digits only."""
    digits = re.sub(r"\D", "", e164)
    return MASK + digits[-4:]


class PhoneHasher:
    """Keyed hash (HMAC-SHA256) of an E.164 number, used wherever a number must be a key."""

    def __init__(self, key: str | bytes) -> None:
        if not key:
            raise ValueError("the PII hash key is empty")
        self._key = key.encode() if isinstance(key, str) else key

    def fingerprint(self, e164: str) -> str:
        return hmac.new(self._key, e164.encode(), hashlib.sha256).hexdigest()[:32]

    def digest(self, *parts: str) -> str:
        """Keyed hash of several texts together (a message's numbers and words), to recognise
        the same content again without keeping it. JSON keeps ("ab", "c") apart from ("a", "bc")."""
        return hmac.new(self._key, json.dumps(parts).encode(), hashlib.sha256).hexdigest()[:32]
