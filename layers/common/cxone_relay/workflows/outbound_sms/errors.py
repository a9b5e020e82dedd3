"""Why a recipient is refused. The answer lists each recipient's reasons; none of them fails the
request (other recipients may be fine), so these are codes, not exceptions."""

from __future__ import annotations

NO_CONSENT = "no-consent"  # no opt-in in the consent ledger
OPTED_OUT = "opted-out"  # the latest word in the ledger is an opt-out
NO_SEND_WINDOW = "no-send-window"  # its candidate zones share no instant inside the window
UNKNOWN_TIME_ZONE = "unknown-time-zone"  # phonenumbers knows no zone for it, so quiet hours cannot be kept
