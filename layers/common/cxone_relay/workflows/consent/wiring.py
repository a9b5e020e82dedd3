"""Builds the consent workflow's objects from settings, once per container. Handlers call one
function here and stay wiring-only; tests call the same functions with their own clock and
sleeper."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from cxone_relay.platform.components import Components
from cxone_relay.platform.data.dnc import DncSyncStore
from cxone_relay.workflows.consent.intake import ConsentIntake
from cxone_relay.workflows.consent.settings import ConsentApiSettings, OptOutConsumerSettings

if TYPE_CHECKING:
    from cxone_relay.platform.consumer import SqsConsumer
    from cxone_relay.workflows.consent.models import OptOutOutcome, QueuedOptOut

# Fixed idempotency key prefix: keys stay stable across renames of handlers and modules.
CONSUMER_KEY_PREFIX = "opt-out"


def intake(settings: ConsentApiSettings, *, clock: Callable[[], float] = time.time) -> ConsentIntake:
    parts = Components(settings)
    return ConsentIntake(
        ledger=parts.consent,
        syncs=DncSyncStore(parts.state_table, parts.hasher),
        audit=parts.audit,
        opt_outs=parts.publisher(settings.opt_out_queue_url),
        default_region=settings.default_phone_region,
        clock=clock,
    )


def consumer(
    settings: OptOutConsumerSettings,
    *,
    clock: Callable[[], float] = time.time,
    sleeper: Callable[[float], None] = time.sleep,
) -> SqsConsumer[QueuedOptOut, OptOutOutcome]:
    # Imported here, not at the top: the API function imports this module too, and must not pay
    # for the consumer's machinery (CXone client, HTTP stack, batch processor) in its cold start.
    from cxone_relay.platform.consumer import SqsConsumer  # noqa: PLC0415
    from cxone_relay.platform.data.dnc import DncCallLog  # noqa: PLC0415
    from cxone_relay.workflows.consent.models import OptOutOutcome, QueuedOptOut  # noqa: PLC0415
    from cxone_relay.workflows.consent.processor import (  # noqa: PLC0415
        WORKFLOW,
        DncBatchSync,
        DncTarget,
        OptOutRecorder,
        audit_subject,
    )

    parts = Components(settings)
    gateway = parts.cxone(sleeper=sleeper)
    sync = DncBatchSync(
        targets=[DncTarget(gateway.client(environment.name)) for environment in settings.cxone_environments],
        ledger=parts.consent,
        syncs=DncSyncStore(parts.state_table, parts.hasher),
        calls=DncCallLog(parts.state_table, clock),
        hasher=parts.hasher,
        audit=parts.audit,
        error_rules=settings.error_rules(),
        clock=clock,
    )
    return SqsConsumer(
        QueuedOptOut,
        OptOutOutcome,
        process=OptOutRecorder(parts.consent).process,
        # One record is one change: its source and reference (a message or request id) name it.
        idempotency=parts.idempotency(
            CONSUMER_KEY_PREFIX, settings.idempotency_ttl_seconds, key_jmespath="[source, reference]"
        ),
        dead_letters=parts.dead_letters(WORKFLOW),
        audit=parts.audit,
        audit_subject=audit_subject,
        finalise=sync.finalise,
    )
