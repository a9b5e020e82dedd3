"""The one DynamoDB helper every data-access module uses.

Items go in and come out as plain Python (str, int, Decimal, bool, lists, dicts); floats are
stored as Decimal. A conditional write that DynamoDB refuses is a result (`False`), not an
exception, because for our callers it is an answer ("already recorded", "someone else holds the
lease"), never a fault. Batched writes and reads retry what DynamoDB left unprocessed, with
backoff, and raise if some still did not complete, so the caller's record is retried rather than
lost (or decided on half the facts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

BATCH_LIMIT = 25  # BatchWriteItem's limit
BATCH_GET_LIMIT = 100  # BatchGetItem's limit
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

Item = dict[str, Any]


class WriteNotCompleted(RuntimeError):
    """DynamoDB kept some items unprocessed after every retry."""


class ReadNotCompleted(RuntimeError):
    """DynamoDB kept some keys unprocessed after every retry."""


def is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def to_dynamo(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(_dynamo_safe(value)) for key, value in item.items()}


def from_dynamo(item: Mapping[str, Any]) -> Item:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _dynamo_safe(value: Any) -> Any:
    """DynamoDB numbers are Decimal, never float."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {key: _dynamo_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_dynamo_safe(item) for item in value]
    return value


class DynamoTable:
    def __init__(
        self,
        dynamodb_client: Any,
        name: str,
        *,
        sleeper: Callable[[float], None] = time.sleep,
        max_batch_rounds: int = 6,
    ) -> None:
        self._dynamodb = dynamodb_client
        self.name = name
        self._sleep = sleeper
        self._max_batch_rounds = max_batch_rounds

    def put(self, item: Mapping[str, Any], *, condition: str | None = None, **values: Any) -> bool:
        """Write one item. With a condition, returns False (and writes nothing) when it fails.
        `values` are the condition's placeholders, without their colon: `when=...` for `:when`."""
        return self._conditional(self._dynamodb.put_item, {"Item": to_dynamo(item)}, condition, values)

    def put_new(self, item: Mapping[str, Any]) -> bool:
        """Write an item whose key does not exist yet; False if it does (nothing is replaced)."""
        return self.put(item, condition="attribute_not_exists(pk)")

    def update(
        self,
        key: Mapping[str, Any],
        changes: Mapping[str, Any],
        *,
        condition: str | None = None,
        **values: Any,
    ) -> bool:
        """Set some attributes of one item (creating it if the condition allows), leaving the others
        as they are; with a condition, False (and nothing changed) when it fails. Attribute names
        go through placeholders, so reserved words (status) are fine."""
        names = {f"#a{index}": name for index, name in enumerate(changes)}
        request: dict[str, Any] = {
            "Key": to_dynamo(key),
            "UpdateExpression": "SET "
            + ", ".join(f"{alias} = :v{index}" for index, alias in enumerate(names)),
            "ExpressionAttributeNames": names,
        }
        placeholders = {f"v{index}": value for index, value in enumerate(changes.values())}
        return self._conditional(self._dynamodb.update_item, request, condition, placeholders | values)

    def delete(self, key: Mapping[str, Any], *, condition: str | None = None, **values: Any) -> bool:
        """Delete one item; with a condition, False (and nothing deleted) when it fails."""
        return self._conditional(self._dynamodb.delete_item, {"Key": to_dynamo(key)}, condition, values)

    def _conditional(
        self,
        operation: Callable[..., Any],
        request: dict[str, Any],
        condition: str | None,
        values: dict[str, Any],
    ) -> bool:
        request["TableName"] = self.name
        if condition:
            request["ConditionExpression"] = condition
        if values and (condition or "UpdateExpression" in request):
            request["ExpressionAttributeValues"] = to_dynamo({f":{k}": v for k, v in values.items()})
        try:
            operation(**request)
        except ClientError as exc:
            if condition and is_condition_failure(exc):
                return False
            raise
        return True

    def get(self, key: Mapping[str, Any]) -> Item | None:
        item = self._dynamodb.get_item(TableName=self.name, Key=to_dynamo(key), ConsistentRead=True).get(
            "Item"
        )
        return from_dynamo(item) if item else None

    def get_many(self, keys: Sequence[Mapping[str, Any]]) -> list[Item]:
        """The items that exist among `keys` (strongly consistent), in no particular order;
        100 keys per BatchGetItem call, a key asked twice read once."""
        unique = list({tuple(sorted(key.items())): key for key in keys}.values())
        items: list[Item] = []
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            items.extend(
                self._read_batch([to_dynamo(key) for key in unique[start : start + BATCH_GET_LIMIT]])
            )
        return items

    def _read_batch(self, keys: list[dict[str, Any]]) -> list[Item]:
        items: list[Item] = []
        pending = keys
        for round_number in range(self._max_batch_rounds):
            response = self._dynamodb.batch_get_item(
                RequestItems={self.name: {"Keys": pending, "ConsistentRead": True}}
            )
            items.extend(from_dynamo(item) for item in response.get("Responses", {}).get(self.name, []))
            pending = response.get("UnprocessedKeys", {}).get(self.name, {}).get("Keys", [])
            if not pending:
                return items
            self._sleep(min(2.0, 0.05 * (2**round_number)))
        raise ReadNotCompleted(
            f"{len(pending)} keys of {self.name} still unprocessed after {self._max_batch_rounds} rounds"
        )

    def query_prefix(self, pk: str, sk_prefix: str = "") -> list[Item]:
        """Every item of one partition whose sort key starts with `sk_prefix` (all of them for ""),
        in sort-key order."""
        values = {":pk": pk, ":prefix": sk_prefix} if sk_prefix else {":pk": pk}
        return self._query_all(
            {
                "TableName": self.name,
                "KeyConditionExpression": "pk = :pk" + (" AND begins_with(sk, :prefix)" if sk_prefix else ""),
                "ExpressionAttributeValues": to_dynamo(values),
                "ConsistentRead": True,
            }
        )

    def query(self, pk: str, *, where: Mapping[str, Any]) -> list[Item]:
        """Every item of one partition whose attributes equal `where` (a filter: the partition is
        read, and paid for, whole), consistently, in sort-key order."""
        names = {f"#a{n}": name for n, name in enumerate(where)}
        values = {f":v{n}": value for n, value in enumerate(where.values())}
        return self._query_all(
            {
                "TableName": self.name,
                "KeyConditionExpression": "pk = :pk",
                "FilterExpression": " AND ".join(f"#a{n} = :v{n}" for n in range(len(where))),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": to_dynamo({":pk": pk} | values),
                "ConsistentRead": True,
            }
        )

    def _query_all(self, request: dict[str, Any]) -> list[Item]:
        items: list[Item] = []
        while True:
            page = self._dynamodb.query(**request)
            items.extend(from_dynamo(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def put_many(self, items: Iterable[Mapping[str, Any]]) -> None:
        """Unconditional batched writes (BatchWriteItem takes no conditions), 25 per call."""
        requests = [{"PutRequest": {"Item": to_dynamo(item)}} for item in items]
        for start in range(0, len(requests), BATCH_LIMIT):
            self._write_batch(requests[start : start + BATCH_LIMIT])

    def _write_batch(self, requests: Sequence[dict[str, Any]]) -> None:
        pending = list(requests)
        for round_number in range(self._max_batch_rounds):
            response = self._dynamodb.batch_write_item(RequestItems={self.name: pending})
            pending = response.get("UnprocessedItems", {}).get(self.name, [])
            if not pending:
                return
            # Unprocessed items mean throttling: back off before asking again.
            self._sleep(min(2.0, 0.05 * (2**round_number)))
        raise WriteNotCompleted(
            f"{len(pending)} items for {self.name} still unprocessed after {self._max_batch_rounds} rounds"
        )
