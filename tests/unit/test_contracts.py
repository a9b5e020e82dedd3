"""The published contracts stay current: the OpenAPI document and the sample events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from cxone_relay.workflows.consent.models import OptOutRequest, QueuedOptOut
from cxone_relay.workflows.inbound_sms.models import InboundSmsRequest, QueuedInboundSms
from local.openapi import DOCUMENT_PATH, render
from local.template import ROOT, load_template

EVENTS = ROOT / "events"
MANIFEST = json.loads((EVENTS / "manifest.json").read_text())


def test_openapi_document_is_current_and_valid():
    generated = render()
    assert DOCUMENT_PATH.read_text() == generated, "functions/openapi.json is stale: run `make openapi`"
    document = json.loads(generated)
    validate(document)
    routes = {(route.path, route.method.lower()) for route in load_template().api_routes()}
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == routes
    assert document["security"] == [{"apiKey": []}]


def test_every_event_file_is_in_the_manifest_and_names_a_template_function():
    files = {path.name for path in EVENTS.glob("*.json")} - {"manifest.json"}
    assert files == set(MANIFEST)
    functions = set(load_template().function_ids())
    assert {entry["function"] for entry in MANIFEST.values()} <= functions
    assert all(isinstance(entry.get("expect"), dict) and entry["expect"] for entry in MANIFEST.values())


def _events_for(function_id: str) -> list[Path]:
    return [EVENTS / name for name, entry in MANIFEST.items() if entry["function"] == function_id]


@pytest.mark.parametrize("path", _events_for("InboundSmsApiFunction"), ids=lambda p: p.name)
def test_api_events_carry_a_valid_request(path):
    event = json.loads(path.read_text())
    route = next(r for r in load_template().api_routes() if r.function_id == "InboundSmsApiFunction")
    assert (event["path"], event["httpMethod"]) == (route.path, route.method)
    InboundSmsRequest.model_validate_json(event["body"])


@pytest.mark.parametrize("path", _events_for("InboundSmsConsumerFunction"), ids=lambda p: p.name)
def test_sqs_events_carry_queued_messages(path):
    event = json.loads(path.read_text())
    assert event["Records"]
    for record in event["Records"]:
        assert record["eventSource"] == "aws:sqs"
        QueuedInboundSms.model_validate_json(record["body"])


@pytest.mark.parametrize("path", _events_for("InboxPullFunction"), ids=lambda p: p.name)
def test_schedule_events_look_like_what_eventbridge_scheduler_sends(path):
    event = json.loads(path.read_text())
    assert (event["source"], event["detail-type"]) == ("aws.scheduler", "Scheduled Event")
    assert isinstance(event["detail"], str)  # Scheduler sends detail as a JSON string
    assert event["resources"][0].startswith("arn:aws:scheduler:")


@pytest.mark.parametrize("path", _events_for("ConsentApiFunction"), ids=lambda p: p.name)
def test_consent_api_events_carry_a_valid_request_for_one_of_its_routes(path):
    event = json.loads(path.read_text())
    routes = {
        (r.path, r.method) for r in load_template().api_routes() if r.function_id == "ConsentApiFunction"
    }
    assert (event["path"], event["httpMethod"]) in routes
    OptOutRequest.model_validate_json(event["body"])


@pytest.mark.parametrize("path", _events_for("OptOutConsumerFunction"), ids=lambda p: p.name)
def test_opt_out_events_carry_queued_opt_outs(path):
    event = json.loads(path.read_text())
    assert event["Records"]
    for record in event["Records"]:
        assert record["eventSource"] == "aws:sqs"
        QueuedOptOut.model_validate_json(record["body"])
