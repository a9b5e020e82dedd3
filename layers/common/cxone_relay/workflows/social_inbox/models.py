"""A social conversation as the relay reads it, what the rules decide about it, and what one
pull run reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field


class Priority(StrEnum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"

    def raised(self) -> Priority:
        """One level up; HIGH stays HIGH."""
        return Priority.HIGH if self is not Priority.LOW else Priority.MEDIUM


@dataclass(frozen=True)
class Conversation:
    """A CXone digital contact (case): `text` is the customer's words, the text of its inbound
    messages, or its body when it has none."""

    id: str
    channel: str | None
    subject: str | None
    text: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Classification:
    priority: Priority
    keywords: tuple[str, ...]
    # VADER's compound score; None for languages it does not score (it is English-only).
    sentiment_score: float | None
    language: str
    shouting: bool
    raised_for_shouting: bool


class RunReport(BaseModel):
    """What one scheduled run did: the handler's answer, and the run's audit record."""

    run_id: str
    outcome: Literal["completed", "incomplete", "skipped"]
    reason: str | None = None
    pages: int = 0
    conversations: int = 0
    by_priority: dict[str, int] = Field(default_factory=dict)
    tickets: int = 0
    # Contacts the listing served that the relay left alone, by why (outside the window, unreadable).
    dropped: dict[str, int] = Field(default_factory=dict)
    window_from: str | None = None
    window_to: str | None = None
    checkpoint: str | None = None
    checkpoint_lag_seconds: float | None = None
    duration_ms: int = 0
