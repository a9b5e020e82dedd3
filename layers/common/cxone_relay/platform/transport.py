"""A retrying HTTP transport shared by the CXone and ticketing clients.

Why its own module: every upstream call must (1) time out, (2) honour 429 Retry-After,
(3) back off with full jitter on 5xx and connection errors, and (4) give up while the Lambda
still has time to report the record as failed, so it returns to its queue instead of dying with
the invocation. Clock, sleeper and random source are injected so tests never sleep.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from cxone_relay.platform.errors import (
    PermanentUpstreamError,
    RetryableUpstreamError,
    UnauthorizedError,
)
from cxone_relay.platform.observability import logger

IDEMPOTENCY_HEADER = "Idempotency-Key"


class RemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


class TimeBudget:
    """How long retries may go on: the Lambda's remaining time less a reserve for reporting
    the batch result, or a fixed allowance outside Lambda."""

    def __init__(
        self,
        remaining_seconds: Callable[[], float],
        reserve_seconds: float,
    ) -> None:
        self._remaining = remaining_seconds
        self.reserve_seconds = reserve_seconds

    @classmethod
    def from_context(cls, context: RemainingTime | None, reserve_seconds: float = 2.0) -> TimeBudget:
        if context is None:
            return cls.fixed(60.0, reserve_seconds=reserve_seconds)
        return cls(lambda: context.get_remaining_time_in_millis() / 1000.0, reserve_seconds)

    @classmethod
    def fixed(
        cls, seconds: float, clock: Callable[[], float] = time.monotonic, reserve_seconds: float = 0.0
    ) -> TimeBudget:
        deadline = clock() + seconds
        return cls(lambda: deadline - clock(), reserve_seconds)

    def usable_seconds(self) -> float:
        return self._remaining() - self.reserve_seconds


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0
    # A server asking for minutes is not going to be waited on inside one invocation.
    max_retry_after: float = 30.0
    connect_timeout: float = 3.05
    read_timeout: float = 10.0

    @classmethod
    def for_webhook(cls, max_attempts: int, timeout: float) -> RetryPolicy:
        """A client's own receiver (an audit or status webhook): a short backoff, and every attempt
        and every wait bounded by `timeout`, so a slow receiver cannot hold a batch for long."""
        return cls(
            max_attempts=max_attempts,
            base_delay=0.2,
            max_delay=1.0,
            max_retry_after=timeout,
            connect_timeout=timeout,
            read_timeout=timeout,
        )

    def backoff(self, attempt: int, rng: Callable[[], float]) -> float:
        """Full jitter: uniformly between 0 and the capped exponential step."""
        return rng() * min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))


def parse_retry_after(value: str | None, now: Callable[[], datetime]) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


def _error_details(response: requests.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [error for error in body["errors"] if isinstance(error, dict)]
    return []


def build_session(pool_size: int = 16) -> requests.Session:
    """A pooled session; created once per container and reused across invocations."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class RetryingHttp:
    """Sends one logical request, retrying what can be retried inside the time budget."""

    def __init__(
        self,
        service: str,
        session: requests.Session | None = None,
        policy: RetryPolicy | None = None,
        sleeper: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.session = session or build_session()
        self.policy = policy or RetryPolicy()
        self._sleep = sleeper
        self._rng = rng
        self._now = wall_clock
        self._monotonic = monotonic

    def request(
        self,
        method: str,
        url: str,
        budget: TimeBudget,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        auth: tuple[str, str] | None = None,
        idempotency_key: str | None = None,
        answers: frozenset[int] = frozenset(),
    ) -> requests.Response:
        """`answers`: error statuses that are an answer for this call, returned rather than raised
        (a 409 that says the record already exists, say)."""
        sent_headers = dict(headers or {})
        if idempotency_key:
            sent_headers[IDEMPOTENCY_HEADER] = idempotency_key
        policy = self.policy
        last_problem = "no attempt made"
        last_status: int | None = None
        for attempt in range(1, policy.max_attempts + 1):
            # An attempt may overrun its window by one socket read (see _attempt), so a window
            # of half the usable budget keeps even a dribbling server inside it.
            window = min(policy.read_timeout, budget.usable_seconds() / 2)
            if window <= 0.1:
                break
            try:
                response = self._attempt(
                    method, url, window, headers=sent_headers, json=json, data=data, params=params, auth=auth
                )
            except _TransportFailure as failure:
                last_problem, last_status = str(failure), None
                delay = policy.backoff(attempt, self._rng)
            else:
                status = response.status_code
                if status < 400 or status in answers:
                    return response
                if status == 401:
                    raise UnauthorizedError(self.service, "access token refused", status=401)
                if status != 429 and status < 500:
                    raise PermanentUpstreamError(
                        self.service,
                        f"{method} {_path_of(url)} refused",
                        status=status,
                        details=_error_details(response),
                    )
                last_problem, last_status = f"HTTP {status}", status
                retry_after = (
                    parse_retry_after(response.headers.get("Retry-After"), self._now)
                    if status == 429
                    else None
                )
                if retry_after is not None and retry_after > policy.max_retry_after:
                    # Waiting here would spend the batch's time on one record; it comes back later.
                    logger.warning(
                        "upstream asked to wait longer than an invocation will",
                        extra={"service": self.service, "retry_after_seconds": retry_after},
                    )
                    break
                delay = retry_after if retry_after is not None else policy.backoff(attempt, self._rng)
            if attempt == policy.max_attempts:
                break
            # Only wait if a further attempt could still complete inside the budget.
            if delay + min(policy.read_timeout, 1.0) > budget.usable_seconds():
                logger.warning(
                    "retry budget exhausted",
                    extra={"service": self.service, "attempt": attempt, "problem": last_problem},
                )
                break
            logger.info(
                "retrying upstream call",
                extra={
                    "service": self.service,
                    "attempt": attempt,
                    "problem": last_problem,
                    "delay_seconds": round(delay, 3),
                },
            )
            self._sleep(delay)
        raise RetryableUpstreamError(
            self.service, f"{method} {_path_of(url)} gave up after {last_problem}", status=last_status
        )

    def _attempt(self, method: str, url: str, window: float, **kwargs: Any) -> requests.Response:
        """One request whose connect, headers and body all finish by `window` seconds from now,
        give or take the one socket read that crosses the deadline (requests' read timeout is
        per read, so a server sending a byte at a time could otherwise hold it indefinitely)."""
        deadline = self._monotonic() + window
        try:
            response = self.session.request(
                method,
                url,
                timeout=(min(self.policy.connect_timeout, window), window),
                stream=True,
                **kwargs,
            )
            chunks = []
            # read1 returns whatever has arrived (iter_content would block until a full chunk),
            # so the deadline is checked after every read.
            while chunk := response.raw.read1(16384, decode_content=True):
                chunks.append(chunk)
                if self._monotonic() > deadline:
                    response.close()
                    raise _TransportFailure("response not complete within the attempt's deadline")
            response._content = b"".join(chunks)
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
        ) as exc:
            raise PermanentUpstreamError(
                self.service, f"cannot call {_path_of(url)}: {type(exc).__name__}"
            ) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            # Reading `raw` directly surfaces urllib3's errors unwrapped (a broken chunk, a read
            # timeout); all of them mean there is no usable answer this time.
            raise _TransportFailure(type(exc).__name__) from None
        return response


class _TransportFailure(Exception):
    """No HTTP answer: connection refused or dropped, a timeout, a broken or slow body. Its
    message says which."""


def response_json(response: requests.Response, service: str) -> Any:
    """The body as JSON; a 2xx with an unreadable body (a proxy's HTML page) is a passing upstream
    fault, not bad input of ours."""
    try:
        return response.json()
    except ValueError:
        raise RetryableUpstreamError(
            service, f"unreadable JSON from {_path_of(response.url)}", status=response.status_code
        ) from None


def _path_of(url: str) -> str:
    """The path only: query strings can carry phone numbers."""
    return urlsplit(url).path
