"""Signed webhooks, both ways: the SMS channel's delivery reports to us, and our final statuses to a
send's webhookUrl.

`X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>`. The HMAC covers
the body exactly as sent, so an altered body fails; `t` must be within 5 minutes of now, so a
captured request cannot be replayed later. Signatures are compared in constant time, against every
secret in use: during a rotation the secret holds `current` and `previous`, and a report signed with
either is accepted. Several v1 values may be given (a sender mid-rotation signs with both).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence

from cxone_relay.platform.errors import Unauthenticated
from cxone_relay.platform.observability import count

HEADER = "X-Signature"
TOLERANCE_SECONDS = 300
_HEX_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")
_SECONDS = re.compile(r"^[0-9]{1,12}$")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The X-Signature header value for a body sent at `timestamp`."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


class SignatureVerifier:
    """Checks X-Signature on a raw body; `secrets` gives the secrets in use (read with a cache, so a
    rotation is picked up without a redeploy)."""

    def __init__(
        self,
        secrets: Callable[[], Sequence[str]],
        clock: Callable[[], float] = time.time,
        tolerance_seconds: int = TOLERANCE_SECONDS,
    ) -> None:
        self._secrets = secrets
        self._clock = clock
        self._tolerance = tolerance_seconds

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        header = headers.get(HEADER.lower())
        if not header:
            self._refuse("missing", "no X-Signature header")
        timestamp, given = _parse(header or "")
        if timestamp is None or not given:
            self._refuse("malformed", "X-Signature is not t=<seconds>,v1=<hex>")
        assert timestamp is not None
        if abs(self._clock() - timestamp) > self._tolerance:
            self._refuse("stale", f"t is more than {self._tolerance} seconds from now")
        expected = [signature(secret, timestamp, body).encode() for secret in self._secrets() if secret]
        # Every pair is compared (no early exit), each in constant time.
        matches = [hmac.compare_digest(candidate, wanted) for candidate in given for wanted in expected]
        if not any(matches):
            self._refuse("mismatch", "no v1 signature matches the body")

    def _refuse(self, reason: str, message: str) -> None:
        count("DeliveryWebhookUnauthenticated", reason=reason)
        raise Unauthenticated(message)


def _parse(header: str) -> tuple[int | None, list[bytes]]:
    timestamp: int | None = None
    given: list[bytes] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            if timestamp is not None or not _SECONDS.match(value):
                return None, []
            timestamp = int(value)
        elif name == "v1" and _HEX_DIGEST.match(value):
            given.append(value.lower().encode())
    return timestamp, given
