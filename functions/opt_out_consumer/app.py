"""opt-out consumer: the consent ledger, then each batch's numbers into every CXone DNC group."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cxone_relay.platform.observability import logger, metrics, tracer
from cxone_relay.workflows.consent import wiring
from cxone_relay.workflows.consent.settings import OptOutConsumerSettings

consumer = wiring.consumer(OptOutConsumerSettings.from_env())


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.handle(event, context)
