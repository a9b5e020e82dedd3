"""DTMF end to end over HTTP only: the API front, the CXone simulator's agent sessions and state,
and the ticketing simulator as the audit webhook (/hooks/dtmf-audit)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from local.builders import dtmf_request
from tests.e2e.conftest import HTTP_TIMEOUT_SECONDS, get_json, unique_id, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

DELIVERY_TIMEOUT = 30


def post_dtmf(stack: dict[str, Any], body: Any) -> requests.Response:
    return requests.post(
        f"{stack['api']}/dtmf",
        json=body,
        headers={"x-api-key": stack["api_key"]},
        timeout=HTTP_TIMEOUT_SECONDS,
    )


def hooks_for(stack: dict[str, Any], request_id: str) -> list[dict[str, Any]]:
    return [
        h
        for h in get_json(f"{stack['ticketing']}/_sim/hooks?name=dtmf-audit")
        if h["body"]["request_id"] == request_id
    ]


def test_dtmf_reaches_the_agent_session_once_and_the_audit_webhook(local_stack: dict[str, Any]) -> None:
    session = unique_id("e2e-session")
    requests.post(
        f"{local_stack['cxone']}/_sim/agent-sessions",
        json={"session_ids": [session]},
        timeout=HTTP_TIMEOUT_SECONDS,
    ).raise_for_status()

    answer = post_dtmf(local_stack, dtmf_request(session, "31#", timeout_ms=30000))

    assert answer.status_code == 202
    request_id = answer.json()["id"]
    [hook] = wait_for(lambda: hooks_for(local_stack, request_id), DELIVERY_TIMEOUT, "the audit webhook")
    assert (hook["body"]["outcome"], hook["body"]["cxone_status"]) == ("sent", 202)
    played = [d for d in get_json(f"{local_stack['cxone']}/_sim/state")["dtmf"] if d["sessionId"] == session]
    assert played == [
        {"sessionId": session, "dtmfSequence": "31#", "toneDurationMS": 100, "toneSpacingMS": 50}
    ]


def test_dtmf_to_an_ended_session_is_final(local_stack: dict[str, Any]) -> None:
    answer = post_dtmf(local_stack, dtmf_request(unique_id("e2e-ended"), "4", timeout_ms=30000))

    request_id = answer.json()["id"]
    [hook] = wait_for(lambda: hooks_for(local_stack, request_id), DELIVERY_TIMEOUT, "the audit webhook")
    assert (hook["body"]["outcome"], hook["body"]["cxone_status"]) == ("session_ended", 404)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"digits": "\uff11"}, "digits"),  # full-width one
        ({"timeout_ms": 30001}, "timeout_ms"),
        ({"node_transition_flag": 1}, "node_transition_flag"),
    ],
)
def test_invalid_dtmf_is_422_naming_the_field(local_stack: dict[str, Any], change: dict, field: str) -> None:
    answer = post_dtmf(local_stack, dtmf_request(unique_id("e2e-invalid")) | change)

    assert answer.status_code == 422
    assert [problem["field"] for problem in answer.json()["fields"]] == [field]
