"""Builds the inbox-pull run from settings, once per container. The handler calls this and stays
wiring-only; tests call it with the same settings and their own clock and sleeper."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from cxone_relay.platform.components import Components
from cxone_relay.platform.data.checkpoints import CheckpointStore
from cxone_relay.platform.data.leases import Lease
from cxone_relay.platform.language import LanguageDetector
from cxone_relay.platform.sentiment import SentimentAnalyzer
from cxone_relay.workflows.social_inbox.paging import InboxReader
from cxone_relay.workflows.social_inbox.puller import LEASE_PURPOSE, InboxPuller
from cxone_relay.workflows.social_inbox.rules import Classifier, Thresholds, UrgentKeywords
from cxone_relay.workflows.social_inbox.settings import InboxPullSettings
from cxone_relay.workflows.social_inbox.tickets import TicketExport

# Fixed: the checkpoint and lease keys stay stable across renames of modules and functions.
CHECKPOINT_PREFIX = "social-inbox"


def classifier(settings: InboxPullSettings) -> Classifier:
    # Both heavy libraries (lingua, VADER) load on first use, inside these objects.
    return Classifier(
        UrgentKeywords(settings.urgent_keywords, settings.default_language),
        LanguageDetector(
            settings.inbox_languages,
            settings.default_language,
            min_letters=settings.language_min_letters,
            min_confidence=settings.language_min_confidence,
        ),
        SentimentAnalyzer(),
        Thresholds(settings.high_priority_sentiment_below, settings.medium_priority_sentiment_below),
        shouting_raises=settings.shouting_raises_priority,
    )


def inbox_pull(
    settings: InboxPullSettings,
    *,
    clock: Callable[[], float] = time.time,
    sleeper: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> InboxPuller:
    parts = Components(settings)
    environment = settings.primary_environment.name
    tickets = None
    if settings.ticketing_base_url and settings.ticketing_api_key_secret_arn:
        tickets = TicketExport(
            parts.ticketing(
                settings.ticketing_base_url,
                settings.ticketing_api_key_secret_arn,
                settings.ticket_chunk_size,
                sleeper=sleeper,
            )
        )
    return InboxPuller(
        name=f"{CHECKPOINT_PREFIX}#{environment}",
        reader=InboxReader(parts.cxone(sleeper=sleeper).client(environment), settings.inbox_channels),
        classifier=classifier(settings),
        tickets=tickets,
        checkpoints=CheckpointStore(parts.state_table, clock),
        lease=lambda seconds: Lease(parts.state_table, LEASE_PURPOSE, seconds, clock=clock),
        audit=parts.audit,
        retention=timedelta(days=settings.inbox_retention_days),
        settle=timedelta(seconds=settings.inbox_settle_seconds),
        page_seconds=settings.inbox_page_seconds,
        clock=clock,
        monotonic=monotonic,
    )
