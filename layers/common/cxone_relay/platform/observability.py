"""The one place Logger, Tracer and Metrics are created; every module imports them from here.

Log lines pass through a formatter that scrubs secrets and masks phone numbers after the record
is built, so nothing a caller logs (messages, extra keys, exception text) can leak either.

X-Ray is conditional: Powertools' Tracer imports the X-Ray SDK and builds two botocore clients
when it is created, even with tracing off, which was the largest part of an API handler's cold
start. An invocation X-Ray did not sample gets nothing from the SDK (its subsegments would be
dropped), so the Tracer is created on the first sampled invocation and unsampled ones skip it.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
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

Handler = TypeVar("Handler", bound=Callable[..., Any])
# Lambda sets it for each invocation: "Root=1-...;Parent=...;Sampled=1".
TRACE_HEADER_VARIABLE = "_X_AMZN_TRACE_ID"


def invocation_sampled() -> bool:
    """Whether X-Ray records the current invocation (API Gateway's sampling rule decided, or
    Lambda's own for queue consumers)."""
    return "Sampled=1" in os.environ.get(TRACE_HEADER_VARIABLE, "").split(";")


def _powertools_tracer() -> Any:
    from aws_lambda_powertools import Tracer  # noqa: PLC0415 - loads the X-Ray SDK: sampled invocations only

    return Tracer()


class ConditionalTracer:
    """`capture_lambda_handler` as Powertools has it, with the Tracer made on first need."""

    def __init__(self, make_tracer: Callable[[], Any] = _powertools_tracer) -> None:
        self._make_tracer = make_tracer
        self._tracer: Any = None
        self._invoked = False

    @property
    def tracer(self) -> Any:
        """The Powertools Tracer (created now if no sampled invocation has needed it yet)."""
        if self._tracer is None:
            self._tracer = self._make_tracer()
        return self._tracer

    def capture_lambda_handler(self, handler: Handler) -> Handler:
        traced: list[Callable[..., Any]] = []

        @functools.wraps(handler)
        def run(event: Any, context: Any) -> Any:
            first_invocation, self._invoked = not self._invoked, True
            if not invocation_sampled():
                return handler(event, context)
            if not traced:
                traced.append(self.tracer.capture_lambda_handler(handler))
                if not first_invocation:
                    _not_a_cold_start()
            return traced[0](event, context)

        return run  # type: ignore[return-value]


def _not_a_cold_start() -> None:
    """Powertools annotates the first traced invocation as a cold start; made late, it would
    call a warm one cold."""
    from aws_lambda_powertools.tracing import tracer as powertools_tracing  # noqa: PLC0415

    powertools_tracing.is_cold_start = False


logger = Logger(logger_formatter=RedactingFormatter())
tracer = ConditionalTracer()
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
