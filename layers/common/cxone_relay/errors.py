"""Errors shared across workflows.

Upstream errors say whether trying again can help: consumers turn a retryable error into a
partial-batch failure (the record comes back) and a permanent one into an audited DLQ path.
"""

from __future__ import annotations

from typing import Any


class ConfigurationError(RuntimeError):
    """Settings are missing or malformed; raised at cold start so a bad deploy fails fast."""


class UpstreamError(Exception):
    """A call to CXone or the ticketing system did not succeed."""

    retryable: bool = False

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


class UnauthorizedError(PermanentUpstreamError):
    """HTTP 401: the access token was refused. The CXone client refreshes once and retries."""


class AuthenticationError(PermanentUpstreamError):
    """The token endpoint refused our credentials: a configuration problem, not a passing one."""
