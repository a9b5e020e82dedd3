"""The DNC sync's rules on their own: which numbers a call carries, its idempotency key, what each
per-record result means, and the lag."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from cxone_relay.platform.cxone.models import DncRecordResult, DncResult
from cxone_relay.workflows.consent import rules
from cxone_relay.workflows.consent.rules import NO_RESULT, ErrorRules, RecordVerdict, Verdict

A, B, C = "+14155552671", "+442079460958", "+33612345678"
DEFAULT = ErrorRules()


def ok(phone: str | None) -> DncRecordResult:
    return DncRecordResult(success=True, error=None, formatted_phone=phone)


def failed(phone: str | None, error: str | None) -> DncRecordResult:
    return DncRecordResult(success=False, error=error, formatted_phone=phone)


def answer(*records: DncRecordResult, error_count: int | None = None) -> DncResult:
    errors = sum(not record.success for record in records) if error_count is None else error_count
    return DncResult(error_count=errors, records=list(records))


# Error texts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        "Phone number already exists in this DNC group",
        "ALREADY IN GROUP",
        "Number is already on the list",
        "Duplicate record",
    ],
)
def test_a_number_the_group_already_holds_is_applied(error):
    assert DEFAULT.classify(error) == RecordVerdict(Verdict.APPLIED, error, already_listed=True)


@pytest.mark.parametrize(
    "error",
    [
        "Invalid phoneNumber '14155552671': expected 7 to 15 digits",
        "Phone number is not valid",
        "Malformed record",
        "Unsupported FORMAT",
        "Numbers of this country are not allowed",
        "Not permitted for this business unit",
    ],
)
def test_a_refusal_no_retry_can_change_is_permanent(error):
    assert DEFAULT.classify(error) == RecordVerdict(Verdict.REFUSED, error)


@pytest.mark.parametrize("error", ["Internal error, try again", "Timeout writing record", "locked"])
def test_anything_else_is_retried_with_its_reason(error):
    assert DEFAULT.classify(error) == RecordVerdict(Verdict.RETRY, error)


@pytest.mark.parametrize("error", [None, ""])
def test_a_failure_without_a_reason_is_retried_and_says_so(error):
    assert DEFAULT.classify(error) == RecordVerdict(Verdict.RETRY, "CXone gave no reason")


def test_already_listed_wins_over_a_permanent_phrase():
    verdict = DEFAULT.classify("Invalid request: number already exists")
    assert verdict.verdict is Verdict.APPLIED and verdict.already_listed


def test_configured_phrases_are_case_insensitive_and_blanks_are_dropped():
    configured = ErrorRules.from_lists(["Schon Vorhanden", " "], ["UNGÜLTIG", ""])
    assert configured == ErrorRules(("schon vorhanden",), ("ungültig",))
    assert configured.classify("Nummer schon vorhanden").verdict is Verdict.APPLIED
    assert configured.classify("Nummer ungültig").verdict is Verdict.REFUSED
    assert configured.classify("Invalid phoneNumber").verdict is Verdict.RETRY  # defaults replaced


def test_the_defaults_are_what_the_settings_document():
    assert rules.DEFAULT_ALREADY_LISTED == ("already exists", "already in", "already on", "duplicate")
    assert rules.DEFAULT_PERMANENT == (
        "invalid",
        "not valid",
        "malformed",
        "format",
        "not allowed",
        "not permitted",
    )


# What a call carries -----------------------------------------------------------------------


def test_an_environment_gets_each_number_once_sorted_and_none_it_has():
    assert rules.still_needed([C, A, B, A, C], synced=[B]) == [A, C]
    assert rules.still_needed([A, B], synced=[A, B]) == []
    assert rules.still_needed([], synced=[A]) == []
    assert rules.still_needed(iter([B, A]), synced=iter([])) == [A, B]


def test_the_content_key_is_the_same_for_the_same_content_in_any_order():
    key = rules.content_key("emea", "7", ["h2", "h1", "h3"])
    assert re.fullmatch(r"[0-9a-f]{40}", key)
    assert rules.content_key("emea", "7", ["h3", "h1", "h2", "h1"]) == key
    assert rules.content_key("primary", "7", ["h1", "h2", "h3"]) != key
    assert rules.content_key("emea", "1", ["h1", "h2", "h3"]) != key
    assert rules.content_key("emea", "7", ["h1", "h2"]) != key


def test_the_content_key_is_a_digest_of_environment_group_and_hashes():
    import hashlib

    assert rules.content_key("emea", "7", ["b", "a"]) == hashlib.sha256(b"emea\n7\na\nb").hexdigest()[:40]


def test_the_idempotency_key_changes_only_after_an_answer_with_failures():
    assert rules.idempotency_key("abc", 0) == "dnc-add-abc"
    assert rules.idempotency_key("abc", 1) == "dnc-add-abc-1"
    assert rules.idempotency_key("abc", 2) == "dnc-add-abc-2"


# Reading an answer -------------------------------------------------------------------------


def test_every_record_applied():
    assert rules.read_results([A, B], answer(ok("14155552671"), ok("442079460958")), DEFAULT) == {
        A: rules.APPLIED,
        B: rules.APPLIED,
    }


def test_a_200_with_failed_records_fails_only_those():
    result = answer(ok("14155552671"), failed("442079460958", "Internal error"), ok("33612345678"))
    assert rules.read_results([A, B, C], result, DEFAULT) == {
        A: rules.APPLIED,
        B: RecordVerdict(Verdict.RETRY, "Internal error"),
        C: rules.APPLIED,
    }


def test_unnamed_records_are_read_by_position():
    result = answer(ok(None), failed(None, "Invalid phoneNumber"))
    assert rules.read_results([A, B], result, DEFAULT) == {
        A: rules.APPLIED,
        B: RecordVerdict(Verdict.REFUSED, "Invalid phoneNumber"),
    }


def test_named_records_in_another_order_are_matched_by_the_number_they_name():
    result = answer(failed("442079460958", "locked"), ok("14155552671"))
    assert rules.read_results([A, B], result, DEFAULT) == {
        A: rules.APPLIED,
        B: RecordVerdict(Verdict.RETRY, "locked"),
    }


def test_a_national_number_without_its_country_code_names_the_number():
    result = answer(ok("(415) 555-2671"), failed("2079460958", "locked"))
    verdicts = rules.read_results([A, B], result, DEFAULT)
    assert verdicts[A] == rules.APPLIED
    assert verdicts[B] == RecordVerdict(Verdict.RETRY, "locked")


def test_a_record_naming_more_digits_than_sent_still_names_the_number():
    assert rules.read_results([A], answer(failed("0014155552671", "locked")), DEFAULT) == {
        A: RecordVerdict(Verdict.RETRY, "locked")
    }


def test_a_name_of_fewer_than_seven_digits_names_nothing():
    # Six digits could end many numbers; seven is the least taken as a name.
    six = answer(failed("552671", "locked"), failed("552671", "locked"), error_count=2)
    assert rules.read_results([A], six, DEFAULT) == {A: RecordVerdict(Verdict.RETRY, NO_RESULT)}
    seven = answer(failed("5552671", "locked"), ok(None))
    assert rules.read_results([A], seven, DEFAULT) == {A: RecordVerdict(Verdict.RETRY, "locked")}


def test_a_record_in_position_that_names_another_number_is_not_taken_for_it():
    # Same count as sent, but CXone answered B's record first: positions would swap them.
    result = answer(ok("442079460958"), failed("14155552671", "locked"))
    assert rules.read_results([A, B], result, DEFAULT) == {
        A: RecordVerdict(Verdict.RETRY, "locked"),
        B: rules.APPLIED,
    }


def test_a_number_without_a_record_is_applied_only_if_the_answer_reports_no_errors():
    assert rules.read_results([A, B], answer(), DEFAULT) == {A: rules.APPLIED, B: rules.APPLIED}
    no_records_but_errors = DncResult(error_count=1, records=[])
    assert rules.read_results([A, B], no_records_but_errors, DEFAULT) == {
        A: RecordVerdict(Verdict.RETRY, NO_RESULT),
        B: RecordVerdict(Verdict.RETRY, NO_RESULT),
    }


def test_with_fewer_records_than_numbers_unnamed_records_are_not_guessed():
    result = answer(failed(None, "locked"), ok("442079460958"), error_count=1)
    assert rules.read_results([A, B, C], result, DEFAULT) == {
        A: RecordVerdict(Verdict.RETRY, NO_RESULT),
        B: rules.APPLIED,
        C: RecordVerdict(Verdict.RETRY, NO_RESULT),
    }


def test_an_already_listed_failure_is_applied_and_marked():
    result = answer(failed("14155552671", "Phone number already exists"))
    assert rules.read_results([A], result, DEFAULT) == {
        A: RecordVerdict(Verdict.APPLIED, "Phone number already exists", already_listed=True)
    }


# Lag ---------------------------------------------------------------------------------------


def test_the_lag_is_seconds_from_request_to_applied_and_never_negative():
    requested = datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert rules.lag_seconds(requested, requested + timedelta(minutes=2, milliseconds=500)) == 120.5
    assert rules.lag_seconds(requested, requested) == 0.0
    assert rules.lag_seconds(requested, requested - timedelta(seconds=3)) == 0.0
