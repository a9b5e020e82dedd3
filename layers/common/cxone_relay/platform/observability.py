"""The one place Logger, Tracer and Metrics are created; every module imports them from here.

Log lines pass through a formatter that scrubs secrets and masks phone numbers after the record
is built, so nothing a caller logs (messages, extra keys, exception text) can leak either.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from cxone_relay.platform.redaction import redact, redact_text

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "CxoneRelay")


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools JSON formatter that redacts the whole record before it is written."""

    def serialize(self, log: Any) -> str:
        return redact_text(super().serialize(redact(log)))


# Dimensioned counts are flushed on their own (single_metric), so an invocation that emitted only
# those leaves the shared set empty: expected here, not a sign of lost metrics.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

logger = Logger(logger_formatter=RedactingFormatter())
tracer = Tracer()
metrics = Metrics(namespace=NAMESPACE)


def scope_metrics_to_stack(stack: str | None) -> None:
    """Every metric carries the stack's name and the function's service, so two stacks in one
    account never add up into one series, and alarms and the dashboard pick theirs. Set here, at
    wiring, because Powertools reads the service name when `metrics` is created (at import)."""
    dimensions = {"stack": stack or ""}
    if not metrics.service:  # Powertools adds its own when it read the name at import
        dimensions["service"] = os.environ.get("POWERTOOLS_SERVICE_NAME", "")
    wanted = {name: value for name, value in dimensions.items() if value}
    if wanted != metrics.default_dimensions:
        metrics.set_default_dimensions(**wanted)


def count(name: str, value: float = 1, **dimensions: str) -> None:
    """A count metric; with dimensions it is emitted on its own so each dimension set is a series."""
    if not dimensions:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        return
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=value,
        namespace=NAMESPACE,
        # single_metric adds the service itself (from the environment, when called).
        default_dimensions={k: v for k, v in metrics.default_dimensions.items() if k != "service"},
    ) as metric:
        for key, dimension in dimensions.items():
            metric.add_dimension(name=key, value=dimension)
