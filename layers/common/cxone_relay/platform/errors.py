"""Errors shared across workflows.

Upstream errors say whether trying again can help: consumers turn a retryable error into a
partial-batch failure (the record comes back) and a permanent one into an audited DLQ path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ConfigurationError(RuntimeError):
    """Settings are missing or malformed; raised at cold start so a bad deploy fails fast."""


class UpstreamError(Exception):
    """A call to CXone or the ticketing system did not succeed."""

    retryable: bool = False
    # The upstream refused this record itself, so no later attempt can succeed: the consumer
    # dead-letters it at once instead of letting redelivery try it maxReceiveCount times.
    refuses_the_record: bool = False

    def __init__(
        self,
        service: str,
        message: str,
        *,
        status: int | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{service}: {message}" + (f" (HTTP {status})" if status else ""))
        self.service = service
        self.status = status
        self.details = details or []


class RetryableUpstreamError(UpstreamError):
    """Throttling, a 5xx, a timeout or a dropped connection that outlived the retry budget."""

    retryable = True


class PermanentUpstreamError(UpstreamError):
    """The upstream refused the request itself (4xx other than 401/429): retrying cannot help."""

    refuses_the_record = True


class UnauthorizedError(PermanentUpstreamError):
    """HTTP 401: the access token was refused. The CXone client refreshes once and retries."""

    # About our credentials, not the record: once an operator fixes them, the record goes through.
    refuses_the_record = False


class AuthenticationError(PermanentUpstreamError):
    """The token endpoint refused our credentials: a configuration problem, not a passing one."""

    refuses_the_record = False


# Domain errors: what workflow code raises about a request. Only the platform API module knows
# which HTTP status each one becomes.


class FieldProblem(ValueError):
    """One field of a request is invalid; `field` names it as the caller spelled it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidFields(ValueError):
    """A request has invalid fields (all of them named, not just the first)."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = problems


class Refused(Exception):
    """A valid request that a business rule refuses (no consent, spam, opted out).

    `reason` is a stable code a client can act on; `details` go to the caller as they are, so
    they must hold nothing the caller did not send."""

    def __init__(self, reason: str, **details: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class Unauthenticated(Exception):
    """A request whose sender could not be authenticated (a webhook without a valid signature).
    Its message says why, for the logs; the caller learns only that it was refused."""


class Conflict(Exception):
    """A request that contradicts one already accepted (an id reused for different content)."""


@dataclass(frozen=True)
class InvalidRequest:
    """A request refused before any workflow logic ran (malformed JSON, invalid fields), as told
    to the workflow so it can audit it. `body` is the parsed JSON object when there was one, so
    the workflow can pick its own subject id."""

    request_id: str
    body: dict[str, Any] | None
    reason: str
    problems: list[FieldProblem]
