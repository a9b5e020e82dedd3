"""The published contracts stay current: the OpenAPI document and the sample events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel

from cxone_relay.workflows.consent.models import OptOutRequest, QueuedOptOut
from cxone_relay.workflows.dtmf.models import DtmfSubmission, QueuedDtmf
from cxone_relay.workflows.inbound_sms.models import InboundSmsRequest, QueuedInboundSms
from cxone_relay.workflows.outbound_sms.models import (
    DeliveryStatusRequest,
    OutboundSmsRequest,
    QueuedOutboundSms,
    QueuedStatus,
)
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
    # The signed webhook has no API key, and says so.
    assert document["paths"]["/sms/status"]["post"]["security"] == []
    assert "401" in document["paths"]["/sms/status"]["post"]["responses"]


def test_every_event_file_is_in_the_manifest_and_names_a_template_function():
    files = {path.name for path in EVENTS.glob("*.json")} - {"manifest.json"}
    assert files == set(MANIFEST)
    functions = set(load_template().function_ids())
    assert {entry["function"] for entry in MANIFEST.values()} <= functions
    assert all(isinstance(entry.get("expect"), dict) and entry["expect"] for entry in MANIFEST.values())


def _events_for(function_id: str) -> list[Path]:
    return [EVENTS / name for name, entry in MANIFEST.items() if entry["function"] == function_id]


# What each function's sample events must carry: its request model, or its queued message model.
API_MODELS: dict[str, type[BaseModel]] = {
    "InboundSmsApiFunction": InboundSmsRequest,
    "DtmfApiFunction": DtmfSubmission,
    "OutboundSmsApiFunction": OutboundSmsRequest,
    "DeliveryWebhookFunction": DeliveryStatusRequest,
    "ConsentApiFunction": OptOutRequest,
}
QUEUE_MODELS: dict[str, type[BaseModel]] = {
    "InboundSmsConsumerFunction": QueuedInboundSms,
    "DtmfConsumerFunction": QueuedDtmf,
    "OutboundSmsConsumerFunction": QueuedOutboundSms,
    "DeliveryStatusConsumerFunction": QueuedStatus,
    "OptOutConsumerFunction": QueuedOptOut,
}
SCHEDULED = tuple(source.function_id for source in load_template().schedule_sources())


def test_every_function_has_a_sample_event_and_a_model_to_check_it_against():
    template = load_template()
    functions = set(template.function_ids())
    # Scheduled functions have no model: their events are checked for Scheduler's shape below.
    scheduled = {source.function_id for source in template.schedule_sources()}
    assert functions == set(API_MODELS) | set(QUEUE_MODELS) | scheduled
    assert all(_events_for(function_id) for function_id in functions)


@pytest.mark.parametrize(
    ("function_id", "path"),
    [(f, p) for f in API_MODELS for p in _events_for(f)],
    ids=lambda value: getattr(value, "name", value),
)
def test_api_events_carry_a_valid_request(function_id, path):
    event = json.loads(path.read_text())
    routes = {(r.path, r.method) for r in load_template().api_routes() if r.function_id == function_id}
    assert (event["path"], event["httpMethod"]) in routes
    API_MODELS[function_id].model_validate_json(event["body"])


@pytest.mark.parametrize(
    ("function_id", "path"),
    [(f, p) for f in QUEUE_MODELS for p in _events_for(f)],
    ids=lambda value: getattr(value, "name", value),
)
def test_sqs_events_carry_queued_messages(function_id, path):
    event = json.loads(path.read_text())
    assert event["Records"]
    for record in event["Records"]:
        assert record["eventSource"] == "aws:sqs"
        QUEUE_MODELS[function_id].model_validate_json(record["body"])


@pytest.mark.parametrize("path", [p for f in SCHEDULED for p in _events_for(f)], ids=lambda p: p.name)
def test_schedule_events_look_like_what_eventbridge_scheduler_sends(path):
    event = json.loads(path.read_text())
    assert (event["source"], event["detail-type"]) == ("aws.scheduler", "Scheduled Event")
    assert isinstance(event["detail"], str)  # Scheduler sends detail as a JSON string
    assert event["resources"][0].startswith("arn:aws:scheduler:")
