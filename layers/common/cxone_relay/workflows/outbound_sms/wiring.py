"""Builds the outbound SMS and delivery status objects from settings, once per container. Handlers
call one function here and stay wiring-only; tests call the same functions with the same settings
(and their own clocks and sleepers)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from cxone_relay.platform.components import Components
from cxone_relay.platform.data.messages import HeldMessages, MessageStatusStore
from cxone_relay.platform.secrets import secret_json
from cxone_relay.workflows.outbound_sms.delivery import DeliveryIntake
from cxone_relay.workflows.outbound_sms.intake import OutboundIntake, SendGate
from cxone_relay.workflows.outbound_sms.settings import (
    DeliveryStatusConsumerSettings,
    DeliveryWebhookSettings,
    HeldReleaseSettings,
    OutboundApiSettings,
    OutboundConsumerSettings,
    webhook_secrets,
)
from cxone_relay.workflows.outbound_sms.signatures import SignatureVerifier

if TYPE_CHECKING:
    from cxone_relay.platform.consumer import SqsConsumer
    from cxone_relay.workflows.outbound_sms.models import (
        OutboundOutcome,
        QueuedOutboundSms,
        QueuedStatus,
        StatusOutcome,
    )
    from cxone_relay.workflows.outbound_sms.release import HeldRelease

# Fixed idempotency key prefixes: keys stay stable across renames of handlers and modules.
API_KEY_PREFIX = "sms-send"
CONSUMER_KEY_PREFIX = "outbound-sms"
STATUS_KEY_PREFIX = "delivery-status"

Clock = Callable[[], float]


def intake(settings: OutboundApiSettings, *, clock: Clock = time.time) -> OutboundIntake:
    parts = Components(settings)
    return OutboundIntake(
        gate=SendGate(parts.consent, settings.quiet_hours_rules()),
        statuses=MessageStatusStore(parts.state_table, clock),
        held=HeldMessages(parts.state_table),
        publisher=parts.publisher(settings.outbound_queue_url),
        audit=parts.audit,
        hasher=parts.hasher,
        # The same Idempotency-Key with another body is a client bug, not a retry: 409.
        idempotency=parts.idempotency(
            API_KEY_PREFIX,
            settings.idempotency_ttl_seconds,
            key_jmespath="key",
            payload_validation_jmespath="body",
        ),
        default_region=settings.default_phone_region,
        max_segments=settings.outbound_max_segments,
        allow_local_webhooks=settings.status_webhook_allow_local,
        clock=clock,
    )


def consumer(
    settings: OutboundConsumerSettings,
    *,
    clock: Clock = time.time,
    sleeper: Callable[[float], None] = time.sleep,
) -> SqsConsumer[QueuedOutboundSms, OutboundOutcome]:
    # Imported here: the API function imports this module too and must not load the consumer's
    # machinery (CXone client, HTTP stack, batch processor) in its cold start.
    from cxone_relay.platform.consumer import SqsConsumer  # noqa: PLC0415
    from cxone_relay.workflows.outbound_sms.intake import WORKFLOW  # noqa: PLC0415
    from cxone_relay.workflows.outbound_sms.models import OutboundOutcome, QueuedOutboundSms  # noqa: PLC0415
    from cxone_relay.workflows.outbound_sms.processor import OutboundProcessor  # noqa: PLC0415
    from cxone_relay.workflows.outbound_sms.processor import audit_subject as send_audit_subject  # noqa: PLC0415

    parts = Components(settings)
    processor = OutboundProcessor(
        cxone=parts.cxone(sleeper=sleeper).client(),
        gate=SendGate(parts.consent, settings.quiet_hours_rules()),
        statuses=MessageStatusStore(parts.state_table, clock),
        held=HeldMessages(parts.state_table),
        audit=parts.audit,
        clock=clock,
    )
    return SqsConsumer(
        QueuedOutboundSms,
        OutboundOutcome,
        process=processor.process,
        idempotency=parts.idempotency(
            CONSUMER_KEY_PREFIX, settings.idempotency_ttl_seconds, key_jmespath="[id, holds]"
        ),
        dead_letters=parts.dead_letters(WORKFLOW),
        audit=parts.audit,
        audit_subject=send_audit_subject,
    )


def held_release(settings: HeldReleaseSettings, *, clock: Clock = time.time) -> HeldRelease:
    from cxone_relay.platform.data.checkpoints import CheckpointStore  # noqa: PLC0415
    from cxone_relay.platform.data.leases import Lease  # noqa: PLC0415
    from cxone_relay.workflows.outbound_sms.release import LEASE_PURPOSE, HeldRelease  # noqa: PLC0415

    parts = Components(settings)
    return HeldRelease(
        held=HeldMessages(parts.state_table),
        statuses=MessageStatusStore(parts.state_table, clock),
        publisher=parts.publisher(settings.outbound_queue_url),
        checkpoints=CheckpointStore(parts.state_table, clock),
        lease=lambda seconds: Lease(parts.state_table, LEASE_PURPOSE, seconds, clock=clock),
        audit=parts.audit,
        lookback=timedelta(minutes=settings.held_release_lookback_minutes),
        minute_seconds=settings.held_release_minute_seconds,
        clock=clock,
    )


def delivery_intake(
    settings: DeliveryWebhookSettings, *, clock: Clock = time.time
) -> tuple[DeliveryIntake, SignatureVerifier]:
    parts = Components(settings)

    def secrets() -> list[str]:
        return webhook_secrets(secret_json(settings.delivery_webhook_secret_arn, required=("current",)))

    verifier = SignatureVerifier(secrets, clock, settings.signature_tolerance_seconds)
    return DeliveryIntake(
        parts.publisher(settings.delivery_status_queue_url), parts.audit, settings.default_phone_region, clock
    ), verifier


def status_consumer(
    settings: DeliveryStatusConsumerSettings,
    *,
    clock: Clock = time.time,
    sleeper: Callable[[float], None] = time.sleep,
) -> SqsConsumer[QueuedStatus, StatusOutcome]:
    from cxone_relay.platform.consumer import SqsConsumer  # noqa: PLC0415
    from cxone_relay.platform.transport import RetryingHttp, RetryPolicy  # noqa: PLC0415
    from cxone_relay.workflows.outbound_sms.delivery import WORKFLOW  # noqa: PLC0415
    from cxone_relay.workflows.outbound_sms.models import QueuedStatus, StatusOutcome  # noqa: PLC0415
    from cxone_relay.workflows.outbound_sms.status import (  # noqa: PLC0415
        StatusProcessor,
        StatusWebhook,
    )
    from cxone_relay.workflows.outbound_sms.status import audit_subject as report_audit_subject  # noqa: PLC0415

    parts = Components(settings)
    timeout = settings.status_webhook_timeout_seconds

    def secrets() -> list[str]:
        return webhook_secrets(secret_json(settings.delivery_webhook_secret_arn, required=("current",)))

    policy = RetryPolicy.for_webhook(settings.status_webhook_max_attempts, timeout)
    http = RetryingHttp("status-webhook", policy=policy, sleeper=sleeper)
    processor = StatusProcessor(
        statuses=MessageStatusStore(parts.state_table, clock),
        cxone=parts.cxone(sleeper=sleeper).client(),
        webhook=StatusWebhook(http, secrets, clock),
        audit=parts.audit,
        hasher=parts.hasher,
    )
    return SqsConsumer(
        QueuedStatus,
        StatusOutcome,
        process=processor.process,
        idempotency=parts.idempotency(STATUS_KEY_PREFIX, settings.idempotency_ttl_seconds),
        dead_letters=parts.dead_letters(WORKFLOW),
        audit=parts.audit,
        audit_subject=report_audit_subject,
    )
