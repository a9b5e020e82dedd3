"""The DNC sync's rules, as pure functions tested on their own:

- which numbers of a batch an environment still needs (each once, none it already has);
- the idempotency key of a DNC call, derived from what the call carries: the same content gets
  the same key (a retry after a timeout or a 503 is recognised), and a new key only once CXone
  has answered that content with failed records (it would otherwise replay that answer);
- what each number's per-record result means: CXone answers HTTP 200 even when records failed,
  so every number is read on its own as applied, to retry, or refused for good;
- the lag from an opt-out's request to its number being in every environment.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the consent API imports these rules' defaults, and must not load the CXone client
    from cxone_relay.platform.cxone.models import DncRecordResult, DncResult

# What CXone says when a number is in the group already: for us that is the record applied. Not
# documented (CXONE_API.md): our reading, configurable as DNC_ALREADY_LISTED_ERRORS.
DEFAULT_ALREADY_LISTED = ("already exists", "already in", "already on", "duplicate")
# What no retry can change (configurable as DNC_PERMANENT_ERRORS). Anything else is retried: a
# refusal we cannot place is treated as passing, and the queue's DLQ catches what never passes.
DEFAULT_PERMANENT = ("invalid", "not valid", "malformed", "format", "not allowed", "not permitted")
# A number CXone names in a record has at least this many digits (a national number without its
# country code, say); fewer cannot tell two of our numbers apart.
MIN_NAMED_DIGITS = 7
NO_RESULT = "CXone's answer had no result for this record"


class Verdict(StrEnum):
    APPLIED = "applied"
    RETRY = "retry"
    REFUSED = "refused"


@dataclass(frozen=True)
class RecordVerdict:
    verdict: Verdict
    error: str | None = None
    already_listed: bool = False


APPLIED = RecordVerdict(Verdict.APPLIED)


@dataclass(frozen=True)
class ErrorRules:
    """How a failed record's error text is read: case-insensitive substrings."""

    already_listed: tuple[str, ...] = DEFAULT_ALREADY_LISTED
    permanent: tuple[str, ...] = DEFAULT_PERMANENT

    @classmethod
    def from_lists(cls, already_listed: Iterable[str], permanent: Iterable[str]) -> ErrorRules:
        return cls(
            tuple(text.casefold() for text in already_listed if text.strip()),
            tuple(text.casefold() for text in permanent if text.strip()),
        )

    def classify(self, error: str | None) -> RecordVerdict:
        text = (error or "").casefold()
        if any(phrase in text for phrase in self.already_listed):
            return RecordVerdict(Verdict.APPLIED, error, already_listed=True)
        if any(phrase in text for phrase in self.permanent):
            return RecordVerdict(Verdict.REFUSED, error)
        return RecordVerdict(Verdict.RETRY, error or "CXone gave no reason")


def still_needed(numbers: Iterable[str], synced: Iterable[str]) -> list[str]:
    """The numbers an environment does not have yet: each once, sorted (so the same set is
    always the same call)."""
    have = set(synced)
    return sorted({number for number in numbers if number not in have})


def content_key(environment: str, group_id: str, phone_hashes: Iterable[str]) -> str:
    """A digest of what one DNC call carries: where it goes and which numbers (by their keyed
    hashes, in any order: the key holds no number)."""
    text = "\n".join([environment, group_id, *sorted(set(phone_hashes))])
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def idempotency_key(content: str, failed_answers: int) -> str:
    """The call's Idempotency-Key: its content key, and after each answer with failed records
    a new one, so CXone applies the retry instead of replaying the failure."""
    return f"dnc-add-{content}" if failed_answers == 0 else f"dnc-add-{content}-{failed_answers}"


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _names(record: DncRecordResult, number: str) -> bool:
    """Whether the record names this number: the same digits, or one ending the other (CXone
    may answer the national number without its country code)."""
    if record.formatted_phone is None:
        return False
    named, sent = _digits(record.formatted_phone), _digits(number)
    if len(named) < MIN_NAMED_DIGITS:
        return False
    return sent.endswith(named) or named.endswith(sent)


def _record_for(index: int, number: str, result: DncResult, in_order: bool) -> DncRecordResult | None:
    if in_order:
        record = result.records[index]
        # An unnamed record is taken by its position; a named one must name this number.
        if record.formatted_phone is None or _names(record, number):
            return record
    return next((record for record in result.records if _names(record, number)), None)


def read_results(sent: Sequence[str], result: DncResult, rules: ErrorRules) -> dict[str, RecordVerdict]:
    """Each sent number's verdict from one DNC answer.

    Records are matched by position when the answer has one per number sent (a named record must
    name its number), else by the number they name. A number with no record is applied only if
    the answer reports no errors at all; otherwise it is retried (adding a number twice is
    harmless, missing one is not)."""
    in_order = len(result.records) == len(sent)
    verdicts: dict[str, RecordVerdict] = {}
    for index, number in enumerate(sent):
        record = _record_for(index, number, result, in_order)
        if record is None:
            verdicts[number] = APPLIED if result.error_count == 0 else RecordVerdict(Verdict.RETRY, NO_RESULT)
        elif record.success:
            verdicts[number] = APPLIED
        else:
            verdicts[number] = rules.classify(record.error)
    return verdicts


def lag_seconds(requested_at: datetime, applied_at: datetime) -> float:
    """Seconds from the request to the number being applied; never negative (a channel's clock
    may run ahead of ours)."""
    return max(0.0, (applied_at - requested_at).total_seconds())
