"""The DynamoDB helper and the stores built on it, on the StateTable that template.yaml defines."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError

from cxone_relay.platform.data import keys
from cxone_relay.platform.data.checkpoints import Checkpoint, CheckpointStore
from cxone_relay.platform.data.consent import ConsentChange, ConsentLedger, ConsentState, ConsentStatus
from cxone_relay.platform.data.dnc import DncCallLog, DncSync, DncSyncStore
from cxone_relay.platform.data.dynamo import DynamoTable, ReadNotCompleted
from cxone_relay.platform.data.leases import Lease
from cxone_relay.platform.redaction import PhoneHasher


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table(stack) -> DynamoTable:
    return DynamoTable(boto3.client("dynamodb"), stack.tables["StateTable"])


def test_a_refused_condition_is_a_false_result_and_writes_nothing(table):
    assert table.put_new({"pk": "p", "sk": "s", "value": 1})
    assert not table.put_new({"pk": "p", "sk": "s", "value": 2})
    assert table.get({"pk": "p", "sk": "s"}) == {"pk": "p", "sk": "s", "value": 1}
    assert not table.put(
        {"pk": "p", "sk": "s", "value": 3}, condition="attribute_not_exists(pk) OR sk = :x", x="t"
    )
    assert table.put({"pk": "p", "sk": "s", "value": 4}, condition="sk = :x", x="s")
    assert table.get({"pk": "p", "sk": "s"}) == {"pk": "p", "sk": "s", "value": 4}


def test_other_dynamodb_errors_are_raised_not_hidden(stack):
    broken = DynamoTable(boto3.client("dynamodb"), "no-such-table")
    with pytest.raises(ClientError):
        broken.put({"pk": "p", "sk": "s"}, condition="attribute_not_exists(pk)")


def test_floats_are_stored_as_numbers_and_read_back(table):
    table.put({"pk": "f", "sk": "s", "ratio": 0.25, "nested": {"x": [1.5]}})
    item = table.get({"pk": "f", "sk": "s"})
    assert item is not None and float(item["ratio"]) == 0.25 and float(item["nested"]["x"][0]) == 1.5


def test_a_query_reads_one_partition_and_keeps_the_items_matching_every_attribute(table):
    table.put({"pk": "p", "sk": "1", "action": "queued", "outcome": "accepted"})
    table.put({"pk": "p", "sk": "2", "action": "rejected", "outcome": "rejected"})
    table.put({"pk": "p", "sk": "3", "action": "queued", "outcome": "other"})
    table.put({"pk": "q", "sk": "1", "action": "queued", "outcome": "accepted"})

    assert [i["sk"] for i in table.query("p", where={"action": "queued"})] == ["1", "3"]
    assert [i["sk"] for i in table.query("p", where={"action": "queued", "outcome": "accepted"})] == ["1"]
    assert table.query("none", where={"action": "queued"}) == []


def test_a_lease_is_exclusive_until_released_or_lapsed(table):
    clock = Clock()
    ours = Lease(table, "inbox", 10.0, clock, holder="a")
    theirs = Lease(table, "inbox", 10.0, clock, holder="b")

    assert ours.acquire("facebook")
    assert ours.acquire("facebook")  # the holder may renew
    assert not theirs.acquire("facebook")
    assert theirs.acquire("twitter")  # leases are per name
    assert not theirs.release("facebook")  # only the holder releases
    clock.now += 10.5
    assert theirs.acquire("facebook")  # lapsed
    assert theirs.release("facebook")
    assert ours.acquire("facebook")


def test_the_consent_ledger_keeps_history_in_time_order_under_hashed_keys(table, stack):
    ledger = ConsentLedger(table, PhoneHasher("k"))
    phone = "+14155552671"
    later = ConsentChange(phone, ConsentStatus.OPTED_IN, "web", "req-2", datetime(2026, 3, 2, tzinfo=UTC))
    earlier = ConsentChange(phone, ConsentStatus.OPTED_OUT, "sms", "msg-1", datetime(2026, 3, 1, tzinfo=UTC))

    assert ledger.record(later)
    assert not ledger.record(earlier)  # older than what stands: recorded, not applied
    assert ledger.record(later)  # a redelivery of the newest change still reports it applied

    assert ledger.status(phone) == ConsentStatus.OPTED_IN
    assert [(e.status, e.source, e.reference) for e in ledger.history(phone)] == [
        (ConsentStatus.OPTED_OUT, "sms", "msg-1"),
        (ConsentStatus.OPTED_IN, "web", "req-2"),
    ]
    assert ledger.history(phone)[0].occurred_at == "2026-03-01T00:00:00.000+00:00"
    stored = boto3.client("dynamodb").scan(TableName=stack.tables["StateTable"])["Items"]
    assert all(phone.lstrip("+") not in str(item) for item in stored)
    assert {item["pk"]["S"] for item in stored} == {
        keys.consent_partition(PhoneHasher("k").fingerprint(phone))
    }


def test_a_redelivered_change_keeps_its_first_entry_untouched(table, stack):
    clock = Clock()
    ledger = ConsentLedger(table, PhoneHasher("k"), clock=clock)
    change = ConsentChange(
        "+14155552671", ConsentStatus.OPTED_OUT, "sms", "msg-1", datetime(2026, 3, 1, tzinfo=UTC)
    )
    ledger.record(change)
    clock.now += 3600
    ledger.record(change)  # SQS redelivers the STOP an hour later

    [entry] = [i for i in _items(stack) if i["sk"]["S"].startswith("entry#")]
    assert entry["recorded_at"]["N"] == str(1_800_000_000)
    assert entry["phone_masked"]["S"] == "***2671"
    current = next(i for i in _items(stack) if i["sk"]["S"] == "current")
    assert current["phone_masked"]["S"] == "***2671" and current["updated_at"]["S"].startswith(
        "2026-03-01T00:00"
    )


def test_changes_at_the_same_instant_from_different_requests_are_both_kept(table):
    ledger = ConsentLedger(table, PhoneHasher("k"))
    when = datetime(2026, 3, 1, 12, tzinfo=UTC)
    ledger.record(ConsentChange("+14155552671", ConsentStatus.OPTED_OUT, "web", "req#1", when))
    ledger.record(ConsentChange("+14155552671", ConsentStatus.OPTED_OUT, "ivr", "call-2", when))

    history = ledger.history("+14155552671")
    assert sorted((e.source, e.reference) for e in history) == [("ivr", "call-2"), ("web", "req#1")]
    assert {e.occurred_at for e in history} == {
        "2026-03-01T12:00:00.000+00:00"
    }  # a "#" in a reference stays out


def _items(stack) -> list[dict]:
    return boto3.client("dynamodb").scan(TableName=stack.tables["StateTable"])["Items"]


def test_a_checkpoint_saves_the_next_version_only_over_the_one_it_read(table):
    store = CheckpointStore(table, Clock())

    assert store.load("inbox#primary") is None
    first = store.save("inbox#primary", "2026-03-10T09:00:00.000000Z", ["b", "a", "b"], expected_version=0)
    assert first is not None
    assert first == Checkpoint("2026-03-10T09:00:00.000000Z", ("a", "b"), 1, "2027-01-15T08:00:00.000+00:00")
    assert store.load("inbox#primary") == first
    # A second "first" save, or one over a version already replaced, writes nothing.
    assert store.save("inbox#primary", "2026-03-10T10:00:00.000000Z", [], expected_version=0) is None
    second = store.save("inbox#primary", "2026-03-10T10:00:00.000000Z", [], expected_version=1)
    assert second is not None and second.version == 2
    assert store.save("inbox#primary", "2026-03-10T11:00:00.000000Z", [], expected_version=1) is None
    assert store.load("inbox#primary") == second
    assert store.load("inbox#other") is None  # one checkpoint per name


def test_a_checkpoint_never_moves_backwards_even_over_the_right_version(table):
    store = CheckpointStore(table, Clock())
    store.save("inbox#primary", "2026-03-10T10:00:00.000000Z", ["a"], expected_version=0)

    assert store.save("inbox#primary", "2026-03-10T09:59:59.999999Z", [], expected_version=1) is None
    same = store.save("inbox#primary", "2026-03-10T10:00:00.000000Z", ["a", "b"], expected_version=1)

    assert same is not None and same.seen_at_position == ("a", "b")
    assert table.get(keys.checkpoint("inbox#primary")) is not None


def test_get_many_reads_the_items_that_exist_in_batches_of_100(table):
    for n in range(150):
        table.put({"pk": f"p{n}", "sk": "s", "n": n})
    dynamodb = boto3.client("dynamodb")
    calls: list[int] = []

    class Counting:
        def batch_get_item(self, RequestItems):
            calls.append(len(RequestItems[table.name]["Keys"]))
            return dynamodb.batch_get_item(RequestItems=RequestItems)

    counted = DynamoTable(Counting(), table.name)
    wanted = [{"pk": f"p{n}", "sk": "s"} for n in range(0, 160)] + [{"pk": "p3", "sk": "s"}]

    items = counted.get_many(wanted)

    assert sorted(int(item["n"]) for item in items) == list(range(150))
    assert calls == [100, 60]  # a key asked twice is read once
    assert counted.get_many([]) == []
    assert calls == [100, 60]


def test_get_many_asks_again_for_unprocessed_keys_then_gives_up(table):
    table.put({"pk": "a", "sk": "s"})

    class Throttled:
        def __init__(self, rounds_throttled: int) -> None:
            self.rounds = rounds_throttled
            self.calls = 0

        def batch_get_item(self, RequestItems):
            self.calls += 1
            keys = RequestItems[table.name]["Keys"]
            if self.calls <= self.rounds:
                return {"Responses": {table.name: []}, "UnprocessedKeys": {table.name: {"Keys": keys}}}
            return {"Responses": {table.name: [{"pk": {"S": "a"}, "sk": {"S": "s"}}]}}

    sleeps: list[float] = []
    recovers = Throttled(2)
    assert DynamoTable(recovers, table.name, sleeper=sleeps.append).get_many([{"pk": "a", "sk": "s"}]) == [
        {"pk": "a", "sk": "s"}
    ]
    assert (recovers.calls, sleeps) == (3, [0.05, 0.1])
    with pytest.raises(ReadNotCompleted):
        DynamoTable(Throttled(10), table.name, sleeper=sleeps.append, max_batch_rounds=3).get_many(
            [{"pk": "a", "sk": "s"}]
        )


def test_the_ledger_reads_many_current_states_at_once_and_keeps_evidence_redacted(table):
    ledger = ConsentLedger(table, PhoneHasher("k"))
    when = datetime(2026, 3, 1, 12, tzinfo=UTC)
    ledger.record(ConsentChange("+14155552671", ConsentStatus.OPTED_OUT, "ivr", "call-1", when))
    ledger.record(
        ConsentChange(
            "+442079460958",
            ConsentStatus.OPTED_IN,
            "web",
            "req-1",
            when,
            evidence="form; call +44 20 7946 0958",
        )
    )

    states = ledger.current_many(["+14155552671", "+442079460958", "+33612345678"])

    assert states == {
        "+14155552671": ConsentState(
            ConsentStatus.OPTED_OUT, "ivr", "call-1", "2026-03-01T12:00:00.000+00:00"
        ),
        "+442079460958": ConsentState(
            ConsentStatus.OPTED_IN, "web", "req-1", "2026-03-01T12:00:00.000+00:00"
        ),
        "+33612345678": None,
    }
    assert ledger.current("+442079460958") == states["+442079460958"]
    assert ledger.current("+33612345678") is None
    assert ledger.status("+33612345678") is None
    [entry] = ledger.history("+442079460958")
    assert entry.evidence == "form; call ***0958"
    assert ledger.history("+14155552671")[0].evidence is None


def test_dnc_sync_state_is_kept_per_number_and_environment_under_hashed_keys(table, stack):
    hasher = PhoneHasher("k")
    store = DncSyncStore(table, hasher)
    applied = datetime(2026, 3, 1, 12, 0, 5, 250000, tzinfo=UTC)
    requested = datetime(2026, 3, 1, 12, tzinfo=UTC)
    sync = DncSync("+14155552671", "emea", "7", applied, requested, "ivr", "call-1")
    store.save([sync, DncSync("+14155552671", "primary", "1", applied, requested, "ivr", "call-1")])
    store.save([])

    found = store.load(["+14155552671", "+14155552671", "+442079460958"], ["primary", "emea"])

    assert set(found) == {("+14155552671", "primary"), ("+14155552671", "emea")}
    assert found[("+14155552671", "emea")] == sync
    assert [s.environment for s in store.of_number("+14155552671")] == ["emea", "primary"]
    assert store.of_number("+442079460958") == []
    items = _items(stack)
    assert {item["sk"]["S"] for item in items} == {"env#emea", "env#primary"}
    assert {item["pk"]["S"] for item in items} == {keys.dnc_partition(hasher.fingerprint("+14155552671"))}
    assert {item["phone_masked"]["S"] for item in items} == {"***2671"}
    assert "4155552671" not in str(items)


def test_the_dnc_call_log_counts_failed_answers_and_never_lowers_the_count(table, stack):
    clock = Clock()
    calls = DncCallLog(table, clock, ttl_seconds=100)

    assert calls.answers("content", "emea") == 0
    assert calls.record_answer("content", "emea", 1, applied=3, failed=2)
    assert calls.answers("content", "emea") == 1
    assert calls.answers("content", "primary") == 0  # per environment
    assert not calls.record_answer("content", "emea", 1, applied=3, failed=2)
    assert calls.record_answer("content", "emea", 2, applied=0, failed=1)
    [item] = _items(stack)
    assert item["pk"]["S"] == "dnc-call#content" and item["sk"]["S"] == "env#emea"
    assert (item["answers"]["N"], item["applied"]["N"], item["failed"]["N"]) == ("2", "0", "1")
    assert (item["answered_at"]["N"], item["expires_at"]["N"]) == ("1800000000", "1800000100")
