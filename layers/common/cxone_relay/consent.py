"""The consent ledger: every opt-in and opt-out, and each number's current status.

Keys hold a keyed hash of the number, never the number. Entries are keyed by when the change
happened and what caused it, so a redelivered STOP writes nothing new; the current status only
moves forward in time, so a late-delivered START cannot undo a newer STOP.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from cxone_relay.redaction import PhoneHasher, mask_phone


class ConsentStatus(StrEnum):
    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"


@dataclass(frozen=True)
class ConsentChange:
    phone: str  # E.164
    status: ConsentStatus
    source: str  # sms, web, ivr
    reference: str  # what caused it: a message id, a request id
    occurred_at: datetime


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class ConsentLedger:
    def __init__(
        self,
        table_name: str,
        dynamodb_client: Any,
        hasher: PhoneHasher,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table_name
        self._dynamodb = dynamodb_client
        self._hasher = hasher
        self._clock = clock

    def _pk(self, phone: str) -> str:
        return f"consent#{self._hasher.fingerprint(phone)}"

    def record(self, change: ConsentChange) -> bool:
        """Append the change and move the current status if this change is the newest.
        Returns whether the current status now reflects this change."""
        pk = self._pk(change.phone)
        when = change.occurred_at.isoformat(timespec="milliseconds")
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": pk},
                    "sk": {"S": f"entry#{when}#{change.reference}"},
                    "status": {"S": change.status.value},
                    "source": {"S": change.source},
                    "reference": {"S": change.reference},
                    "phone_masked": {"S": mask_phone(change.phone)},
                    "recorded_at": {"N": str(int(self._clock()))},
                },
                ConditionExpression="attribute_not_exists(sk)",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise  # an existing entry is a redelivery; anything else is a real failure
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": pk},
                    "sk": {"S": "current"},
                    "status": {"S": change.status.value},
                    "source": {"S": change.source},
                    "reference": {"S": change.reference},
                    "updated_at": {"S": when},
                    "phone_masked": {"S": mask_phone(change.phone)},
                },
                ConditionExpression="attribute_not_exists(pk) OR updated_at <= :when",
                ExpressionAttributeValues={":when": {"S": when}},
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def status(self, phone: str) -> ConsentStatus | None:
        item = self._dynamodb.get_item(
            TableName=self._table,
            Key={"pk": {"S": self._pk(phone)}, "sk": {"S": "current"}},
            ConsistentRead=True,
        ).get("Item")
        return ConsentStatus(item["status"]["S"]) if item else None

    def history(self, phone: str) -> list[dict[str, str]]:
        response = self._dynamodb.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :entry)",
            ExpressionAttributeValues={":pk": {"S": self._pk(phone)}, ":entry": {"S": "entry#"}},
        )
        return [
            {key: next(iter(value.values())) for key, value in item.items()} for item in response["Items"]
        ]
