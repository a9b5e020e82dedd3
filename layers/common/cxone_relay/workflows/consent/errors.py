"""Why an opt-out's SQS record is not done. They are upstream errors, so the queue consumer treats
them as it treats any CXone failure: one that may pass sends the record back to the queue, one
that cannot sends it to the DLQ at once, with its reason. Messages name environments and reasons,
never the number."""

from __future__ import annotations

from cxone_relay.platform.errors import PermanentUpstreamError, RetryableUpstreamError


def _describe(problems: dict[str, str]) -> str:
    return "; ".join(f"{environment}: {reason}" for environment, reason in sorted(problems.items()))


class DncNotApplied(RetryableUpstreamError):
    """The number is not in every environment's DNC group yet, and a retry may get it there."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("cxone", f"DNC record not applied in {_describe(problems)}")
        self.environments = sorted(problems)


class DncRecordRefused(PermanentUpstreamError):
    """CXone refused the number's DNC record in an environment, and no retry can change that."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("cxone", f"DNC record refused in {_describe(problems)}")
        self.environments = sorted(problems)
