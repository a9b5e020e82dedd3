"""Builds the DTMF workflow's objects from settings, once per container. Handlers call one
function here and stay wiring-only; tests call the same functions with the same settings."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from cxone_relay.platform.components import Components
from cxone_relay.workflows.dtmf.intake import DtmfIntake
from cxone_relay.workflows.dtmf.settings import DtmfApiSettings, DtmfConsumerSettings

if TYPE_CHECKING:
    from cxone_relay.workflows.dtmf.processor import DtmfConsumer

# A fixed idempotency key prefix: keys stay stable across renames of handlers and modules.
CONSUMER_KEY_PREFIX = "dtmf"


def intake(settings: DtmfApiSettings) -> DtmfIntake:
    parts = Components(settings)
    return DtmfIntake(
        tones=settings.tone_rules(), audit=parts.audit, publisher=parts.publisher(settings.dtmf_queue_url)
    )


def consumer(
    settings: DtmfConsumerSettings, *, sleeper: Callable[[float], None] = time.sleep
) -> DtmfConsumer:
    """`sleeper` is the audit webhook's wait between retries (tests pass one that does not sleep)."""
    # Imported here, not at the top: the API function imports this module too, and must not pay
    # for the consumer's machinery (CXone client, HTTP stack, batch processor) in its cold start.
    from cxone_relay.platform.consumer import SqsConsumer  # noqa: PLC0415
    from cxone_relay.platform.transport import RetryingHttp, RetryPolicy  # noqa: PLC0415
    from cxone_relay.workflows.dtmf.intake import WORKFLOW  # noqa: PLC0415
    from cxone_relay.workflows.dtmf.models import DtmfOutcome, QueuedDtmf  # noqa: PLC0415
    from cxone_relay.workflows.dtmf.processor import DtmfConsumer, DtmfProcessor, audit_subject  # noqa: PLC0415
    from cxone_relay.workflows.dtmf.webhook import AuditWebhook, WebhookOutbox  # noqa: PLC0415

    parts = Components(settings)
    webhook = None
    if settings.dtmf_audit_webhook_url:
        timeout = settings.dtmf_audit_webhook_timeout_seconds
        policy = RetryPolicy.for_webhook(settings.dtmf_audit_webhook_max_attempts, timeout)
        http = RetryingHttp("audit-webhook", policy=policy, sleeper=sleeper)
        webhook = AuditWebhook(settings.dtmf_audit_webhook_url, http)
    outbox = WebhookOutbox(webhook, parts.audit, settings.dtmf_audit_webhook_batch_seconds)
    processor = DtmfProcessor(cxone=parts.cxone().client(), audit=parts.audit, outbox=outbox)
    return DtmfConsumer(
        SqsConsumer(
            QueuedDtmf,
            DtmfOutcome,
            process=processor.process,
            idempotency=parts.idempotency(CONSUMER_KEY_PREFIX, settings.idempotency_ttl_seconds),
            dead_letters=parts.dead_letters(WORKFLOW),
            audit=parts.audit,
            audit_subject=audit_subject,
        ),
        outbox,
    )
