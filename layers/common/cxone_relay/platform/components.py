"""What every function builds the same way from CoreSettings, once per container: AWS clients,
the PII hasher, the audit trail, the consent ledger, queue publishers, the CXone gateway.

Each part is built on first use, so a function pays only for what it uses (an API handler never
creates a CXone gateway or an SSM client).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import boto3

from cxone_relay.platform.cxone.client import CxoneGateway
from cxone_relay.platform.data.audit import AuditTrail
from cxone_relay.platform.data.consent import ConsentLedger
from cxone_relay.platform.data.dynamo import DynamoTable
from cxone_relay.platform.idempotency import Idempotency
from cxone_relay.platform.queueing import QueuePublisher
from cxone_relay.platform.redaction import PhoneHasher
from cxone_relay.platform.secrets import secret_json, secret_text
from cxone_relay.platform.settings import CoreSettings, CxoneSettings
from cxone_relay.platform.ticketing import TicketingClient
from cxone_relay.platform.transport import RetryingHttp


class Components:
    def __init__(self, settings: CoreSettings) -> None:
        self.settings = settings

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

    def idempotency(self, key_prefix: str, ttl_seconds: int, **options: str) -> Idempotency:
        return Idempotency(self.settings.idempotency_table, key_prefix, ttl_seconds=ttl_seconds, **options)

    def cxone(self) -> CxoneGateway:
        if not isinstance(self.settings, CxoneSettings):
            raise TypeError(f"{type(self.settings).__name__} has no CXone settings")
        return CxoneGateway(self.settings, dynamodb_client=self.dynamodb)

    def ticketing(self, base_url: str, api_key_secret_arn: str, chunk_size: int) -> TicketingClient:
        api_key = secret_json(api_key_secret_arn, required=("api_key",))["api_key"]
        return TicketingClient(base_url, api_key, RetryingHttp("ticketing"), chunk_size=chunk_size)
