"""held-message-release: every minute, queue the held messages whose send window has opened."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cxone_relay.platform.observability import logger, metrics, tracer
from cxone_relay.workflows.outbound_sms import wiring
from cxone_relay.workflows.outbound_sms.settings import HeldReleaseSettings

release = wiring.held_release(HeldReleaseSettings.from_env())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return release.handle(event, context)
