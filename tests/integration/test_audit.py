"""The audit writer on the AuditTable that template.yaml defines (created in moto from it)."""

from __future__ import annotations

import boto3
import pytest

from cxone_relay.platform.data.audit import AuditEvent, AuditRecordExists, AuditSubject, AuditTrail
from cxone_relay.platform.data.dynamo import DynamoTable, WriteNotCompleted
from cxone_relay.platform.redaction import PhoneHasher


class CountingClient:
    """Delegates to the real (moto) client, counting batch calls and optionally holding back
    items as UnprocessedItems the way a throttled table does."""

    def __init__(self, real, hold_back_rounds: int = 0, hold_back: int = 0) -> None:
        self._real = real
        self.batch_sizes: list[int] = []
        self._hold_back_rounds = hold_back_rounds
        self._hold_back = hold_back

    def put_item(self, **kwargs):
        return self._real.put_item(**kwargs)

    def batch_write_item(self, RequestItems):
        (table, requests), *_ = RequestItems.items()
        self.batch_sizes.append(len(requests))
        if self._hold_back_rounds > 0:
            self._hold_back_rounds -= 1
            written, held = requests[: -self._hold_back], requests[-self._hold_back :]
            if written:
                self._real.batch_write_item(RequestItems={table: written})
            return {"UnprocessedItems": {table: held}}
        return self._real.batch_write_item(RequestItems=RequestItems)


def writer(stack, client=None, sleeps=None, max_rounds=6) -> AuditTrail:
    table = DynamoTable(
        client or boto3.client("dynamodb"),
        stack.tables["AuditTable"],
        sleeper=(sleeps.append if sleeps is not None else lambda _s: None),
        max_batch_rounds=max_rounds,
    )
    return AuditTrail(table, PhoneHasher("test-key"), retention_days=30, clock=lambda: 1_800_000_000.0)


def all_items(stack) -> list[dict]:
    return boto3.client("dynamodb").scan(TableName=stack.tables["AuditTable"])["Items"]


def event(n: int, phone: str | None = "+14155552671") -> AuditEvent:
    return AuditEvent(
        workflow="inbound-sms", subject=f"msg-{n}", action="received", outcome="accepted", phone=phone
    )


def test_record_holds_hash_masked_number_and_ttl_but_no_raw_number(stack):
    item = writer(stack).record(event(1))

    stored = all_items(stack)
    assert len(stored) == 1
    flat = str(stored)
    assert "4155552671" not in flat
    assert stored[0]["phone_masked"]["S"] == "***2671"
    assert stored[0]["phone_hash"]["S"] == PhoneHasher("test-key").fingerprint("+14155552671")
    assert int(stored[0]["expires_at"]["N"]) == 1_800_000_000 + 30 * 86400
    assert item["pk"] == "inbound-sms#msg-1"


def test_a_record_cannot_be_overwritten(stack):
    audit = writer(stack)
    item = audit.record(event(1))

    with pytest.raises(AuditRecordExists):
        audit.put(item | {"outcome": "tampered"})

    stored = all_items(stack)
    assert [i["outcome"]["S"] for i in stored] == ["accepted"]


def test_the_same_event_twice_is_two_records(stack):
    audit = writer(stack)
    audit.record(event(1))
    audit.record(event(1))
    assert len(all_items(stack)) == 2


def test_more_than_25_records_are_split_into_batches(stack):
    client = CountingClient(boto3.client("dynamodb"))
    writer(stack, client).record_many([event(n) for n in range(60)])

    assert client.batch_sizes == [25, 25, 10]
    assert len(all_items(stack)) == 60


def test_unprocessed_items_are_retried_until_written(stack):
    client = CountingClient(boto3.client("dynamodb"), hold_back_rounds=2, hold_back=5)
    sleeps: list[float] = []
    writer(stack, client, sleeps).record_many([event(n) for n in range(25)])

    assert client.batch_sizes == [25, 5, 5]
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0]
    assert len(all_items(stack)) == 25


def test_items_still_unprocessed_after_every_round_raise(stack):
    client = CountingClient(boto3.client("dynamodb"), hold_back_rounds=99, hold_back=3)
    with pytest.raises(WriteNotCompleted, match="3 items"):
        writer(stack, client, max_rounds=3).record_many([event(n) for n in range(10)])
    assert len(all_items(stack)) == 7


def test_reason_and_details_are_redacted(stack):
    writer(stack).record(
        AuditEvent(
            workflow="inbound-sms",
            subject="msg-9",
            action="rejected",
            outcome="rejected",
            reason="sender (415) 555-2671 had no consent",
            details={"text": "call me at +14155552671", "token": "abc"},
        )
    )
    flat = str(all_items(stack))
    assert "555-2671" not in flat and "4155552671" not in flat and "abc" not in flat


def test_a_stage_record_is_one_item_ending_at_its_last_step_with_every_step_redacted(stack):
    audit = writer(stack)
    about = AuditSubject("msg-7", phone="+14155552671", correlation_id="corr-7")
    stage, empty = audit.stage("inbound-sms", about), audit.stage("inbound-sms", AuditSubject("msg-8"))
    stage.add("received", "ok")
    stage.add("cxone_failed", "retry", reason="CXone said: call (415) 555-2671", status=503)

    audit.record_stages([stage, empty])  # nothing happened to msg-8: no item for it

    [item] = all_items(stack)
    assert (item["pk"]["S"], item["action"]["S"], item["outcome"]["S"]) == (
        "inbound-sms#msg-7",
        "cxone_failed",
        "retry",
    )
    assert (item["phone_masked"]["S"], item["correlation_id"]["S"]) == ("***2671", "corr-7")
    steps = [step["M"] for step in item["steps"]["L"]]
    assert [(s["action"]["S"], s["outcome"]["S"]) for s in steps] == [
        ("received", "ok"),
        ("cxone_failed", "retry"),
    ]
    assert steps[1]["details"]["M"]["status"]["N"] == "503"
    assert all(s["at"]["S"] == "2027-01-15T08:00:00.000+00:00" for s in steps)
    assert "4155552671" not in str(item) and "555-2671" not in str(item)
