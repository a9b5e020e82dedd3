"""The local stack end to end, over HTTP only: the API front, the simulators' /_sim endpoints and
/_local/queues. One stack serves the whole session, so every test uses its own message ids and
compares queue depths with what they were before it started."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
import requests

from local.template import load_template
from tests.e2e.conftest import (
    HTTP_TIMEOUT_SECONDS,
    add_cxone_fault,
    clear_cxone_faults,
    get_json,
    post_sms,
    queues,
    sms,
    stored_messages,
    unique_id,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

CHANNELS = "/dfo/3.0/channels"
STORE_PATH = f"{CHANNELS}/sms-channel/messages"
DELIVERY_TIMEOUT = 30
DLQ_TIMEOUT = 60


def stored_ids(stack: dict[str, Any]) -> Counter[str]:
    return Counter(message["idOnExternalPlatform"] for message in stored_messages(stack))


def store_requests(stack: dict[str, Any]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = get_json(f"{stack['cxone']}/_sim/requests?path_prefix={STORE_PATH}")
    return entries


def body_id(entry: dict[str, Any]) -> str | None:
    body = entry.get("body")
    return body.get("idOnExternalPlatform") if isinstance(body, dict) else None


def ticket_ids(stack: dict[str, Any]) -> set[str]:
    return {ticket["external_id"] for ticket in get_json(f"{stack['ticketing']}/_sim/tickets")}


def random_sender() -> str:
    # 415-555-xxxx numbers are valid for phonenumbers; avoid the ones other tests use.
    return f"+1415555{random.randint(3000, 9999)}"


def test_inbound_sms_reaches_cxone_and_ticketing(local_stack: dict[str, Any]) -> None:
    message_id = unique_id("e2e-inbound")

    response = post_sms(local_stack, sms(message_id))

    assert response.status_code == 202, response.text
    assert response.json()["id"] == message_id
    wait_for(lambda: stored_ids(local_stack)[message_id], DELIVERY_TIMEOUT, "the message in CXone")
    wait_for(lambda: message_id in ticket_ids(local_stack), DELIVERY_TIMEOUT, "the ticket")


def test_api_gateway_answers_for_keys_and_unknown_routes(local_stack: dict[str, Any]) -> None:
    body = sms(unique_id("e2e-auth"))

    missing = post_sms(local_stack, body, api_key="")
    wrong = post_sms(local_stack, body, api_key="not-the-key")
    unknown = requests.post(
        f"{local_stack['api']}/sms/unknown",
        json=body,
        headers={"x-api-key": local_stack["api_key"]},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    wrong_method = requests.get(
        f"{local_stack['api']}/sms/inbound",
        headers={"x-api-key": local_stack["api_key"]},
        timeout=HTTP_TIMEOUT_SECONDS,
    )

    forbidden = (403, {"message": "Forbidden"})
    no_route = (403, {"message": "Missing Authentication Token"})
    assert (missing.status_code, missing.json()) == forbidden
    assert (wrong.status_code, wrong.json()) == forbidden
    assert (unknown.status_code, unknown.json()) == no_route
    assert (wrong_method.status_code, wrong_method.json()) == no_route


def test_stop_replies_once_and_ends_in_every_environments_dnc_group(local_stack: dict[str, Any]) -> None:
    sender = random_sender()

    def replies() -> list[dict[str, Any]]:
        outbound = get_json(f"{local_stack['cxone']}/_sim/state")["outbound"]
        return [reply for reply in outbound if reply["thread"]["idOnExternalPlatform"] == sender]

    def in_every_dnc_group() -> bool:
        dnc = get_json(f"{local_stack['cxone']}/_sim/state")["dnc"]
        return all(sender.lstrip("+") in dnc.get(group, []) for group in ("1", "7"))

    response = post_sms(local_stack, sms(unique_id("e2e-stop"), body="STOP", sender=sender))

    assert response.status_code == 202, response.text
    assert response.json().get("keyword") == "opt_out"
    wait_for(replies, DELIVERY_TIMEOUT, "the STOP reply")
    wait_for(in_every_dnc_group, DELIVERY_TIMEOUT, "the number in both environments' DNC groups")
    wait_for(lambda: _drained(local_stack), DELIVERY_TIMEOUT, "InboundSmsQueue to drain")
    assert len(replies()) == 1


def test_a_record_cxone_refuses_is_tried_once_and_lands_in_the_dlq(local_stack: dict[str, Any]) -> None:
    message_id = unique_id("e2e-poison")
    dead_before = queues(local_stack)["InboundSmsDLQ"]["visible"]
    add_cxone_fault(local_stack, status=400, body_contains=f'"{message_id}"', path_prefix=CHANNELS)
    try:
        response = post_sms(local_stack, sms(message_id))

        assert response.status_code == 202, response.text
        wait_for(
            lambda: queues(local_stack)["InboundSmsDLQ"]["visible"] == dead_before + 1,
            DLQ_TIMEOUT,
            "the poison message in InboundSmsDLQ",
        )
        attempts = [entry for entry in store_requests(local_stack) if body_id(entry) == message_id]
        # One attempt: a 400 is not retried, and the consumer dead-letters it itself at once.
        assert [entry["status"] for entry in attempts] == [400]
        assert message_id not in stored_ids(local_stack)
    finally:
        clear_cxone_faults(local_stack)


def test_throttled_cxone_still_gets_every_message_exactly_once(local_stack: dict[str, Any]) -> None:
    message_ids = [unique_id(f"e2e-burst-{index:02d}") for index in range(30)]
    dead_before = queues(local_stack)["InboundSmsDLQ"]["visible"]
    add_cxone_fault(local_stack, status=429, rate=0.3, retry_after=0, path_prefix=CHANNELS, seed=7)
    try:
        for message_id in message_ids:
            response = post_sms(local_stack, sms(message_id))
            assert response.status_code == 202, response.text

        wait_for(
            lambda: all(stored_ids(local_stack)[message_id] for message_id in message_ids),
            DELIVERY_TIMEOUT,
            "all 30 messages in CXone",
        )
        wait_for(lambda: _drained(local_stack), DELIVERY_TIMEOUT, "InboundSmsQueue to drain")
        fired = sum(fault["fired"] for fault in get_json(f"{local_stack['cxone']}/_sim/faults"))
    finally:
        clear_cxone_faults(local_stack)

    stored = stored_ids(local_stack)
    assert {message_id: stored[message_id] for message_id in message_ids} == dict.fromkeys(message_ids, 1)
    accepted = Counter(
        body_id(entry) for entry in store_requests(local_stack) if 200 <= entry["status"] < 300
    )
    assert {message_id: accepted[message_id] for message_id in message_ids} == dict.fromkeys(message_ids, 1)
    assert fired > 0, "the 429 fault never fired, so retries were not exercised"
    assert queues(local_stack)["InboundSmsDLQ"]["visible"] == dead_before


def test_local_endpoints(local_stack: dict[str, Any]) -> None:
    template = load_template()
    report = queues(local_stack)

    # From launching the process to stack.json; the bar `make serve` promises.
    assert local_stack["startup_seconds"] < 20

    assert set(report) == set(template.resources_of_type("AWS::SQS::Queue"))
    for queue_id, entry in report.items():
        assert {"url", "visible", "in_flight"} <= set(entry), queue_id
        assert entry["url"].startswith(local_stack["aws"])
    assert report["InboundSmsQueue"]["dlq"] == "InboundSmsDLQ"
    assert isinstance(report["InboundSmsQueue"]["dlq_visible"], int)
    assert "dlq" not in report["InboundSmsDLQ"]

    schedule = requests.post(f"{local_stack['api']}/_local/schedules/InboundSmsApiFunction", timeout=10)
    assert schedule.status_code == 404


def _drained(stack: dict[str, Any]) -> bool:
    inbound = queues(stack)["InboundSmsQueue"]
    return bool(inbound["visible"] + inbound["in_flight"] == 0)


@pytest.mark.parametrize(
    ("size", "error"),
    [(70 * 1024, "payload_too_large"), (6 * 1024 * 1024 + 1, None)],
    ids=["over-64-KB", "over-Lambdas-6-MB"],
)
def test_oversized_bodies_get_413_not_a_gateway_error(
    local_stack: dict[str, Any], size: int, error: str | None
) -> None:
    body = b'{"id": "e2e-big", "body": "' + b"x" * size + b'"}'
    response = requests.post(
        f"{local_stack['api']}/sms/inbound",
        data=body,
        headers={"x-api-key": local_stack["api_key"], "content-type": "application/json"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    assert response.status_code == 413
    if error is not None:  # answered by the function; above 6 MB, by the gateway
        assert response.json()["error"] == error
