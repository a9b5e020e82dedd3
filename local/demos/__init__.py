"""The demo's shared parts: a context that drives the local stack over HTTP, and the shape every
workflow's section has. Each workflow adds one module here and one entry in local/demo.py."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from local.builders import audit_items, audit_records, peek_bodies
from local.stack import LocalStack


@dataclass
class Sent:
    """One request the demo made, and what it got back."""

    label: str
    payload: dict[str, Any] | str | bytes
    status: int = 0
    answer: dict[str, Any] = field(default_factory=dict)
    expected: int = 0  # for bad input: the status it must get

    @property
    def message_id(self) -> str | None:
        return self.payload.get("id") if isinstance(self.payload, dict) else None


class DemoContext:
    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.run = time.strftime("%H%M%S")
        self.api = requests.Session()
        self.api.headers.update({"x-api-key": stack.api_key, "content-type": "application/json"})

    def post_all(self, path: str, scenario: list[Sent]) -> list[Sent]:
        for sent in scenario:
            body = sent.payload if isinstance(sent.payload, str | bytes) else json.dumps(sent.payload)
            response = self.api.post(f"{self.stack.front_url}{path}", data=body, timeout=30)
            sent.status = response.status_code
            sent.answer = response.json() if response.content else {}
        return scenario

    def audit_records(self, workflow: str | None = None) -> list[dict[str, Any]]:
        """Every audited decision (one per step of a stage's record)."""
        return audit_records(
            self.stack.boto3_session_client("dynamodb"),
            self.stack.resources().tables["AuditTable"],
            workflow=workflow,
        )

    def audit_items(self, workflow: str | None = None) -> list[dict[str, Any]]:
        """The audit table's items as stored."""
        return audit_items(
            self.stack.boto3_session_client("dynamodb"),
            self.stack.resources().tables["AuditTable"],
            workflow=workflow,
        )

    def dead_letters(self, dlq_id: str) -> list[dict[str, Any]]:
        return peek_bodies(
            self.stack.boto3_session_client("sqs"), self.stack.resources().queues[dlq_id], rounds=5
        )


class DemoSection(Protocol):
    """One workflow's part of `make demo`: it sends its scenario, then (once the queues have
    drained) says what happened and what, if anything, is unaccounted for."""

    def send(self) -> None: ...

    def summarise(self) -> tuple[list[str], list[str]]:
        """(lines to print, problems: accepted requests not accounted for, wrong answers)."""
        ...
