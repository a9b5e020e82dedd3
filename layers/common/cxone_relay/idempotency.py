"""Powertools idempotency, configured once: a step wrapped here runs once per key within the TTL,
and a repeat gets the first run's result back (SQS redelivery, webhook retries)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)


class Idempotency:
    def __init__(
        self,
        table_name: str,
        key_prefix: str,
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
        self._persistence = DynamoDBPersistenceLayer(table_name=table_name)
        # A fixed prefix keeps keys stable across code moves and renames of the handler module.
        self._key_prefix = key_prefix

    def __call__(self, function: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        """Wrap `function(message=...)`; the key is read from `message`."""
        wrapped: Callable[..., dict[str, Any]] = idempotent_function(
            data_keyword_argument="message",
            persistence_store=self._persistence,
            config=self.config,
            key_prefix=self._key_prefix,
        )(function)
        return wrapped

    def register(self, context: Any) -> None:
        """Lets Powertools expire an in-progress record with the invocation that owns it."""
        if context is not None:
            self.config.register_lambda_context(context)
