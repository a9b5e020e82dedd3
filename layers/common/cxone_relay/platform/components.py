"""What every function builds the same way from CoreSettings, once per container: AWS clients,
the PII hasher, the audit trail, the consent ledger, queue publishers, the CXone gateway.

Each part is built on first use, and the CXone and queue-consumer machinery is imported on first
use too, so an API function pays neither in its cold start.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3

from cxone_relay.platform.data.audit import AuditTrail
from cxone_relay.platform.data.consent import ConsentLedger
from cxone_relay.platform.data.dynamo import DynamoTable
from cxone_relay.platform.idempotency import Idempotency
from cxone_relay.platform.observability import scope_metrics_to_stack
from cxone_relay.platform.queueing import QueuePublisher
from cxone_relay.platform.redaction import PhoneHasher
from cxone_relay.platform.secrets import secret_json, secret_text
from cxone_relay.platform.settings import ConsumerSettings, CoreSettings, CxoneSettings

if TYPE_CHECKING:
    from cxone_relay.platform.consumer import DeadLetters
    from cxone_relay.platform.cxone.client import CxoneGateway
    from cxone_relay.platform.ticketing import TicketingClient


class Components:
    def __init__(self, settings: CoreSettings) -> None:
        self.settings = settings
        scope_metrics_to_stack(settings.metrics_stack)

    @cached_property
    def dynamodb(self) -> Any:
        return boto3.client("dynamodb")

    @cached_property
    def sqs(self) -> Any:
        return boto3.client("sqs")

    @cached_property
    def hasher(self) -> PhoneHasher:
        return PhoneHasher(secret_text(self.settings.pii_hash_key_secret_arn))

    @cached_property
    def state_table(self) -> DynamoTable:
        return DynamoTable(self.dynamodb, self.settings.state_table)

    @cached_property
    def audit(self) -> AuditTrail:
        return AuditTrail(
            DynamoTable(self.dynamodb, self.settings.audit_table),
            self.hasher,
            self.settings.audit_retention_days,
        )

    @cached_property
    def consent(self) -> ConsentLedger:
        return ConsentLedger(self.state_table, self.hasher)

    def publisher(self, queue_url: str) -> QueuePublisher:
        return QueuePublisher(self.sqs, queue_url)

    def dead_letters(self, workflow: str) -> DeadLetters:
        from cxone_relay.platform.consumer import DeadLetters  # noqa: PLC0415 - consumers only

        if not isinstance(self.settings, ConsumerSettings):
            raise TypeError(f"{type(self.settings).__name__} is not a queue consumer's settings")
        return DeadLetters(self.publisher(self.settings.dead_letter_queue_url), workflow)

    def idempotency(self, key_prefix: str, ttl_seconds: int, **options: str) -> Idempotency:
        return Idempotency(
            self.settings.idempotency_table, key_prefix, self.dynamodb, ttl_seconds=ttl_seconds, **options
        )

    def cxone(self, sleeper: Callable[[float], None] = time.sleep) -> CxoneGateway:
        """`sleeper` waits out Retry-After and backoff (tests record the waits instead)."""
        from cxone_relay.platform.cxone.client import CxoneGateway  # noqa: PLC0415 - CXone callers only

        if not isinstance(self.settings, CxoneSettings):
            raise TypeError(f"{type(self.settings).__name__} has no CXone settings")
        return CxoneGateway(self.settings, dynamodb_client=self.dynamodb, sleeper=sleeper)

    def ticketing(
        self,
        base_url: str,
        api_key_secret_arn: str,
        chunk_size: int,
        sleeper: Callable[[float], None] = time.sleep,
    ) -> TicketingClient:
        from cxone_relay.platform.ticketing import TicketingClient  # noqa: PLC0415 - consumers only
        from cxone_relay.platform.transport import RetryingHttp  # noqa: PLC0415

        def api_key() -> str:
            return str(secret_json(api_key_secret_arn, required=("api_key",))["api_key"])

        return TicketingClient(
            base_url, api_key, RetryingHttp("ticketing", sleeper=sleeper), chunk_size=chunk_size
        )
