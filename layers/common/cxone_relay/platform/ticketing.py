"""The ticketing system's batch upsert: one call per chunk of at most `chunk_size` tickets.

Each chunk succeeds or fails on its own, and the caller learns which tickets were in a failed
chunk, so only their messages go back to the queue.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from cxone_relay.platform.errors import UpstreamError
from cxone_relay.platform.transport import RetryingHttp, TimeBudget

BATCH_UPSERT_PATH = "/api/v1/tickets/batch_upsert"


class Ticket(BaseModel):
    """A ticket as the ticketing system stores it; upserts replace it whole, by `id`."""

    model_config = ConfigDict(frozen=True)

    id: str
    external_id: str  # what the ticket is about: a message or conversation id
    subject: str
    description: str
    status: str = "open"
    created_at: str
    channel: str
    category: str | None = None
    queue: str | None = None
    language: str | None = None
    keywords: list[str] = []
    priority: str | None = None
    # VADER's compound score (-1..1); only for languages it scores (English).
    sentiment_score: float | None = None


@dataclass(frozen=True)
class ChunkResult:
    tickets: list[Ticket]
    error: UpstreamError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class TicketingClient:
    """`api_key` is asked for on every batch, so a rotated key is picked up (the secrets module
    caches it for a few minutes)."""

    def __init__(
        self, base_url: str, api_key: Callable[[], str], http: RetryingHttp, chunk_size: int = 50
    ) -> None:
        self._url = base_url.rstrip("/") + BATCH_UPSERT_PATH
        self._api_key = api_key
        self._http = http
        self.chunk_size = chunk_size

    def batch_upsert(self, tickets: list[Ticket], budget: TimeBudget) -> list[ChunkResult]:
        results = []
        for start in range(0, len(tickets), self.chunk_size):
            chunk = tickets[start : start + self.chunk_size]
            payload = [ticket.model_dump(mode="json", exclude_none=True) for ticket in chunk]
            # Upserts are idempotent by ticket id; the key lets the server dedupe retries too. It
            # covers the content, not only the ids: a later upsert that changes a ticket (a
            # conversation updated since) must never be taken for a retry of the earlier one.
            content = json.dumps(payload, sort_keys=True, separators=(",", ":"))
            try:
                self._http.request(
                    "POST",
                    self._url,
                    budget,
                    headers={"x-api-key": self._api_key()},
                    json=payload,
                    idempotency_key="tickets:" + hashlib.sha256(content.encode()).hexdigest(),
                )
            except UpstreamError as exc:
                results.append(ChunkResult(chunk, exc))
            else:
                results.append(ChunkResult(chunk))
        return results
