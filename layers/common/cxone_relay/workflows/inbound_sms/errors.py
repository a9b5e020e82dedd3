"""Why the inbound workflow refuses a message. The platform API layer turns these into answers."""

from __future__ import annotations

from cxone_relay.platform.errors import Refused


class NoConsent(Refused):
    def __init__(self) -> None:
        super().__init__("no consent")


class Spam(Refused):
    def __init__(self, rule: str) -> None:
        super().__init__("spam", rule=rule)
        self.rule = rule
