"""The DTMF rules that are configuration or time, not request shape (models.py has those): tone
duration and spacing within their configured bounds, and how long a request stays worth sending."""

from __future__ import annotations

from dataclasses import dataclass

from cxone_relay.platform.errors import FieldProblem, InvalidFields

DEFAULT_TONE_DURATION_MS = 100
DEFAULT_TONE_SPACING_MS = 50
# ITU-T Q.24 receivers need tones and pauses of at least 40 ms; a second per tone is far beyond
# what any IVR expects, and 16 digits of it would outlast the longest timeout.
DEFAULT_MIN_TONE_MS = 40
DEFAULT_MAX_TONE_MS = 1000


@dataclass(frozen=True)
class ToneBounds:
    """One tone setting: the value used when a request gives none, and the range it may take."""

    default: int
    minimum: int
    maximum: int

    def __post_init__(self) -> None:
        if not self.minimum <= self.default <= self.maximum:
            raise ValueError(
                f"default {self.default} must lie within {self.minimum}..{self.maximum} (inclusive)"
            )

    def problem(self, field: str, given: int) -> FieldProblem | None:
        if self.minimum <= given <= self.maximum:
            return None
        return FieldProblem(field, f"must be from {self.minimum} to {self.maximum} ms")


@dataclass(frozen=True)
class ToneRules:
    duration: ToneBounds
    spacing: ToneBounds

    def resolve(self, duration: int | None, spacing: int | None) -> tuple[int, int]:
        """(duration, spacing) to send: each as given, or its default when not given. Every value
        out of its bounds is named, not just the first."""
        problems = [
            problem
            for field, bounds, given in (
                ("tone_duration_ms", self.duration, duration),
                ("tone_spacing_ms", self.spacing, spacing),
            )
            if given is not None and (problem := bounds.problem(field, given)) is not None
        ]
        if problems:
            raise InvalidFields(problems)
        return (
            self.duration.default if duration is None else duration,
            self.spacing.default if spacing is None else spacing,
        )


def seconds_left(deadline: float, now: float) -> float:
    """How long a request accepted with this deadline may still be sent (negative: too late).
    Digits that reach a call after its IVR has moved on would act on whatever node it is at by
    then, so a request past its deadline is never sent."""
    return deadline - now


def latency_ms(accepted_at: float, now: float) -> float:
    """Milliseconds from API accept to now; never negative (clocks of two containers may differ
    by a little)."""
    return max(0.0, (now - accepted_at) * 1000)
