"""Powertools idempotency, configured once: a step wrapped here runs once per key within the TTL,
and a repeat gets the first run's result back (SQS redelivery, webhook retries).

Results are pydantic models, stored as JSON and validated back on a repeat, so what a step hands
on is typed whether it ran now or earlier. Keep them small: they sit in the idempotency table for
the TTL, so they hold decisions, never message text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from pydantic import BaseModel

Result = TypeVar("Result", bound=BaseModel)


class Idempotency:
    def __init__(
        self,
        table_name: str,
        key_prefix: str,
        dynamodb_client: Any,
        key_jmespath: str = "id",
        payload_validation_jmespath: str = "",
        ttl_seconds: int = 86400,
    ) -> None:
        self.config = IdempotencyConfig(
            event_key_jmespath=key_jmespath,
            payload_validation_jmespath=payload_validation_jmespath,
            raise_on_no_idempotency_key=True,
            expires_after_seconds=ttl_seconds,
        )
        # The container's own client: left to itself, Powertools builds a boto3 Session of its own,
        # which loads the endpoint rules and DynamoDB's model a second time in each cold start.
        self._persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb_client)
        # A fixed prefix keeps keys stable across code moves and renames of the handler module.
        self._key_prefix = key_prefix

    def once(self, function: Callable[..., Result], result_model: type[Result]) -> Callable[..., Result]:
        """Wrap `function(message=...)`; the key is read from `message` (a model or a dict)."""
        wrapped: Callable[..., Result] = idempotent_function(
            data_keyword_argument="message",
            persistence_store=self._persistence,
            config=self.config,
            output_serializer=PydanticSerializer(result_model),
            key_prefix=self._key_prefix,
        )(function)
        return wrapped

    def register(self, context: Any) -> None:
        """Lets Powertools expire an in-progress record with the invocation that owns it."""
        if context is not None:
            self.config.register_lambda_context(context)
