"""The CXone client's typed operations against the CXone simulator: each builds the payload the
real endpoint expects, on the real path, with its idempotency key, and reads the answer back."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest

from cxone_relay.platform.cxone.client import CxoneClient, CxoneGateway
from cxone_relay.platform.cxone.models import (
    DtmfRequest,
    InboundMessage,
    OutboundMessage,
    StatusUpdate,
)
from cxone_relay.platform.errors import PermanentUpstreamError
from cxone_relay.platform.transport import TimeBudget
from tests.conftest import cxone_settings, sim_credentials

WHEN = datetime(2026, 3, 1, 9, 30, 15, 123000, tzinfo=UTC)


@pytest.fixture
def client(stack, cxone_sim) -> CxoneClient:
    gateway = CxoneGateway(
        cxone_settings(cxone_sim.url),
        ssm_client=boto3.client("ssm"),
        dynamodb_client=boto3.client("dynamodb"),
        credentials=sim_credentials,
    )
    return gateway.client()


def budget() -> TimeBudget:
    return TimeBudget.fixed(30)


def only_request(sim, path_prefix: str) -> dict:
    [request] = [r for r in sim.requests(path_prefix=path_prefix) if not r["path"].startswith("/auth")]
    return request


def test_store_inbound_message_sends_dfo_fields_and_returns_the_cxone_id(client, cxone_sim):
    stored = client.store_inbound_message(
        InboundMessage("m-1", "thread-9", "author-9", "hello", WHEN, routing_queue_id="billing-en"),
        idempotency_key="m-1:store",
        budget=budget(),
    )

    request = only_request(cxone_sim, "/dfo/3.0/channels/sms-channel/messages")
    assert request["body"] == {
        "idOnExternalPlatform": "m-1",
        "direction": "inbound",
        "createdAtWithMilliseconds": "2026-03-01T09:30:15.123Z",
        "thread": {"idOnExternalPlatform": "thread-9"},
        "messageContent": {"type": "TEXT", "payload": {"text": "hello"}},
        "authorEndUserIdentity": {"idOnExternalPlatform": "author-9"},
        "routingQueueId": "billing-en",
    }
    assert request["headers"]["idempotency-key"] == "m-1:store"
    assert stored.id == cxone_sim.state()["messages"]["sms-channel"][0]["id"]


def test_send_outbound_names_the_first_recipient_primary(client, cxone_sim):
    sent = client.send_outbound(
        OutboundMessage("+14155552671", "hi there", ["+14155552671", "+14155552672"]),
        idempotency_key="out-1",
        budget=budget(),
        channel_id="other-channel",
    )

    request = only_request(cxone_sim, "/dfo/3.0/channels/other-channel/outbound")
    assert request["body"]["recipients"] == [
        {"idOnExternalPlatform": "+14155552671", "isPrimary": True},
        {"idOnExternalPlatform": "+14155552672", "isPrimary": False},
    ]
    assert request["body"]["messageContent"] == {"type": "TEXT", "payload": {"text": "hi there"}}
    [outbound] = cxone_sim.state()["outbound"]
    assert (sent.id, sent.external_id) == (outbound["id"], outbound["idOnExternalPlatform"])


def test_update_message_status_puts_status_time_and_reason(client, cxone_sim):
    client.update_message_status(
        StatusUpdate("ext-7", "failed", WHEN, reason="carrier rejected"),
        idempotency_key="ext-7:failed",
        budget=budget(),
    )

    request = only_request(cxone_sim, "/dfo/3.0/channels/sms-channel/messages/ext-7/status")
    assert request["method"] == "PUT"
    assert request["body"] == {
        "status": "failed",
        "updatedAt": "2026-03-01T09:30:15.123Z",
        "reason": "carrier rejected",
    }


def test_dnc_records_are_digits_only_and_per_record_failures_are_read(client, cxone_sim):
    added = client.add_dnc_records(
        ["+14155552671", "+442079460958"], idempotency_key="dnc-1", budget=budget()
    )

    request = only_request(cxone_sim, "/inContactAPI/services/v27.0/dnc-groups/1/records")
    assert request["body"] == {
        "dncGroupRecords": [{"phoneNumber": "14155552671"}, {"phoneNumber": "442079460958"}]
    }
    assert added.error_count == 0 and [r.success for r in added.records] == [True, True]
    assert cxone_sim.state()["dnc"] == {"1": ["14155552671", "442079460958"]}

    partly = client.add_dnc_records(
        ["+1", "+14155550100"], idempotency_key="dnc-2", budget=budget(), group_id="7"
    )
    assert partly.error_count == 1
    assert [r.success for r in partly.records] == [False, True]

    client.remove_dnc_records(["+14155552671"], idempotency_key="dnc-3", budget=budget())
    assert cxone_sim.state()["dnc"]["1"] == ["442079460958"]


def test_send_dtmf_posts_the_sequence_to_the_agent_session(client, cxone_sim):
    cxone_sim.add_agent_sessions(["session-5"])

    sent = client.send_dtmf(
        DtmfRequest("session-5", "12#", tone_duration_ms=100, tone_spacing_ms=50),
        idempotency_key="dtmf-1",
        budget=budget(),
    )

    assert (sent.status, sent.session_ended) == (202, False)
    assert cxone_sim.state()["dtmf"] == [
        {"sessionId": "session-5", "dtmfSequence": "12#", "toneDurationMS": 100, "toneSpacingMS": 50}
    ]
    request = only_request(cxone_sim, "/inContactAPI/services/v23.0/agent-sessions/session-5/send-dtmf")
    assert request["headers"]["idempotency-key"] == "dtmf-1"


def test_send_dtmf_to_an_ended_session_is_an_answer_not_an_error(client, cxone_sim):
    ended = client.send_dtmf(
        DtmfRequest("gone", "1", tone_duration_ms=100), idempotency_key="dtmf-2", budget=budget()
    )

    assert (ended.status, ended.session_ended) == (404, True)
    assert ended.response["errors"][0]["errorCode"] == "SessionNotFound"
    assert cxone_sim.state()["dtmf"] == []


def test_send_dtmf_refused_for_another_reason_is_a_permanent_error(client, cxone_sim):
    cxone_sim.add_agent_sessions(["session-6"])
    cxone_sim.add_fault(status=400, path_prefix="/inContactAPI/services/v23.0/agent-sessions")

    with pytest.raises(PermanentUpstreamError) as refused:
        client.send_dtmf(
            DtmfRequest("session-6", "1", tone_duration_ms=100), idempotency_key="dtmf-3", budget=budget()
        )
    assert refused.value.status == 400


def test_listings_page_with_the_scroll_token_until_the_last_page(client, cxone_sim):
    cxone_sim.load_contacts(
        [{"id": f"c-{n}", "channel": "FACEBOOK" if n % 2 else "TWITTER", "status": "open"} for n in range(5)]
    )
    cxone_sim.set_page_size(2)

    pages = [client.list_contacts({"channel[]": ["FACEBOOK", "TWITTER"]}, budget())]
    while pages[-1].scroll_token:
        pages.append(client.list_contacts({}, budget(), scroll_token=pages[-1].scroll_token))

    assert [[item["id"] for item in page.items] for page in pages] == [
        ["c-0", "c-1"],
        ["c-2", "c-3"],
        ["c-4"],
    ]
    assert pages[-1].scroll_token is None
    first, *later = [r for r in cxone_sim.requests(path_prefix="/dfo/3.0/contacts")]
    assert first["query"] == {"channel[]": ["FACEBOOK", "TWITTER"]}
    assert all(set(r["query"]) == {"scrollToken"} for r in later)

    facebook = client.list_contacts({"channel[]": "FACEBOOK"}, budget())
    assert [item["id"] for item in facebook.items] == ["c-1", "c-3"]


def test_writes_without_an_idempotency_key_are_refused_before_any_request(client, cxone_sim):
    with pytest.raises(ValueError, match="idempotency key"):
        client.send_outbound(OutboundMessage("t", "x", ["t"]), idempotency_key="", budget=budget())
    assert cxone_sim.requests(path_prefix="/dfo") == []
