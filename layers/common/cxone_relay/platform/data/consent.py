"""The consent ledger: every opt-in and opt-out, and each number's current status.

Keys hold a keyed hash of the number, never the number. Entries are keyed by when the change
happened and what caused it, so a redelivered STOP writes nothing new; the current status only
moves forward in time, so a late-delivered START cannot undo a newer STOP.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cxone_relay.platform.data import keys
from cxone_relay.platform.data.dynamo import DynamoTable
from cxone_relay.platform.redaction import PhoneHasher, mask_phone, redact_text


class ConsentStatus(StrEnum):
    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"


@dataclass(frozen=True)
class ConsentChange:
    phone: str  # E.164
    status: ConsentStatus
    source: str  # sms, web, ivr, agent, api
    reference: str  # what caused it: a message id, a request id
    occurred_at: datetime  # UTC: changes are ordered by its text
    # Where and how consent was given (an opt-in's proof); kept with the entry, redacted.
    evidence: str | None = None


@dataclass(frozen=True)
class ConsentEntry:
    """One change as the ledger keeps it (masked number, no hash)."""

    status: ConsentStatus
    source: str
    reference: str
    occurred_at: str
    evidence: str | None = None


@dataclass(frozen=True)
class ConsentState:
    """A number's current status and the change that set it."""

    status: ConsentStatus
    source: str
    reference: str
    updated_at: str


class ConsentLedger:
    def __init__(
        self, table: DynamoTable, hasher: PhoneHasher, clock: Callable[[], float] = time.time
    ) -> None:
        self._table = table
        self._hasher = hasher
        self._clock = clock

    def record(self, change: ConsentChange) -> bool:
        """Append the change and move the current status if this change is the newest.
        Returns whether the current status now reflects this change."""
        phone_hash = self._hasher.fingerprint(change.phone)
        when = change.occurred_at.isoformat(timespec="milliseconds")
        common = {
            "status": change.status.value,
            "source": change.source,
            "reference": change.reference,
            "phone_masked": mask_phone(change.phone),
        }
        # An existing entry is a redelivery of the same change: nothing new to append.
        evidence = {"evidence": redact_text(change.evidence)} if change.evidence else {}
        self._table.put(
            {
                **keys.consent_entry(phone_hash, when, change.reference),
                **common,
                **evidence,
                "recorded_at": int(self._clock()),
            },
            condition="attribute_not_exists(sk)",
        )
        return self._table.put(
            {**keys.consent_current(phone_hash), **common, "updated_at": when},
            condition="attribute_not_exists(pk) OR updated_at <= :when",
            when=when,
        )

    def status(self, phone: str) -> ConsentStatus | None:
        """What an outbound consent check reads: None for a number the ledger has never seen."""
        state = self.current(phone)
        return state.status if state else None

    def current(self, phone: str) -> ConsentState | None:
        item = self._table.get(keys.consent_current(self._hasher.fingerprint(phone)))
        return _state(item) if item else None

    def current_many(self, phones: Iterable[str]) -> dict[str, ConsentState | None]:
        """The current state of each number (None for one never seen), in batched reads."""
        hashes = {phone: self._hasher.fingerprint(phone) for phone in phones}
        items = self._table.get_many([keys.consent_current(phone_hash) for phone_hash in hashes.values()])
        by_pk = {str(item["pk"]): item for item in items}
        return {
            phone: (_state(by_pk[pk]) if (pk := keys.consent_partition(phone_hash)) in by_pk else None)
            for phone, phone_hash in hashes.items()
        }

    def history(self, phone: str) -> list[ConsentEntry]:
        partition = keys.consent_partition(self._hasher.fingerprint(phone))
        return [
            ConsentEntry(
                status=ConsentStatus(item["status"]),
                source=str(item["source"]),
                reference=str(item["reference"]),
                # The time never holds a "#"; the reference (a caller's id) may.
                occurred_at=str(item["sk"]).removeprefix(keys.CONSENT_ENTRY_PREFIX).split("#", 1)[0],
                evidence=str(item["evidence"]) if item.get("evidence") else None,
            )
            for item in self._table.query_prefix(partition, keys.CONSENT_ENTRY_PREFIX)
        ]


def _state(item: dict[str, object]) -> ConsentState:
    return ConsentState(
        status=ConsentStatus(str(item["status"])),
        source=str(item["source"]),
        reference=str(item["reference"]),
        updated_at=str(item["updated_at"]),
    )
