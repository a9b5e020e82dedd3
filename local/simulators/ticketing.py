"""Ticketing-system simulator: the batch upsert endpoint the relay exports conversations to, and a
webhook receiver (anything POSTed under /hooks/ is recorded, e.g. the DTMF audit webhook)."""

from __future__ import annotations

import copy
import time
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from local.simulators.base import ApiError, Json, SimulatorServer, Sleeper, json_response, read_json

MAX_BATCH = 100
REQUIRED_TICKET_FIELDS = ("id", "external_id")
HOOKS_PREFIX = "/hooks/"


class TicketingSimulator(SimulatorServer):
    def __init__(self, api_key: str = "local-ticketing-key", *, sleeper: Sleeper = time.sleep) -> None:
        super().__init__(sleeper=sleeper)
        self.api_key = api_key
        self._tickets: dict[str, Json] = {}
        self._hooks: list[Json] = []

    # -- Python accessors --------------------------------------------------------------------

    def tickets(self) -> list[Json]:
        """Stored tickets in first-created order (the same list as GET /_sim/tickets)."""
        with self._lock:
            return copy.deepcopy(list(self._tickets.values()))

    def clear_tickets(self) -> None:
        with self._lock:
            self._tickets.clear()

    def hooks(self, name: str | None = None) -> list[Json]:
        """Webhook deliveries in arrival order, each {"hook", "headers", "body"} (the same list as
        GET /_sim/hooks); `name` keeps those posted to /hooks/<name>."""
        with self._lock:
            return copy.deepcopy([hook for hook in self._hooks if name is None or hook["hook"] == name])

    # -- routing and auth --------------------------------------------------------------------

    def routes(self) -> list[Rule]:
        return [
            Rule("/api/v1/tickets/batch_upsert", methods=["POST"], endpoint=self._batch_upsert),
            Rule("/_sim/tickets", methods=["GET"], endpoint=self._get_tickets),
            Rule("/_sim/tickets", methods=["DELETE"], endpoint=self._delete_tickets),
            Rule(f"{HOOKS_PREFIX}<path:name>", methods=["POST"], endpoint=self._hook),
            Rule("/_sim/hooks", methods=["GET"], endpoint=self._get_hooks),
        ]

    def authorize(self, request: Request) -> None:
        if request.path.startswith(HOOKS_PREFIX):
            return  # a webhook receiver: whoever is configured to call it
        if request.headers.get("x-api-key") != self.api_key:
            raise ApiError(401, "missing or invalid x-api-key", code="unauthorized")

    def error_payload(self, status: int, message: str, code: str, field: str | None) -> Json:
        # A generic REST service, not CXone: its errors have their own, flatter shape.
        return {"error": {"code": code, "message": message, "field": field}}

    # -- endpoints ---------------------------------------------------------------------------

    def _batch_upsert(self, request: Request) -> Response:
        batch = _validate_batch(read_json(request))
        results = []
        for ticket in batch:
            key = str(ticket["id"])
            created = key not in self._tickets
            # Upsert replaces the whole ticket: the sender always sends the full current state.
            self._tickets[key] = copy.deepcopy(ticket)
            results.append({"id": ticket["id"], "created": created})
        created_count = sum(result["created"] for result in results)
        return json_response(
            {"results": results, "created": created_count, "updated": len(results) - created_count}
        )

    def _hook(self, request: Request, name: str) -> Response:
        headers = {key.lower(): value for key, value in request.headers.items()}
        self._hooks.append({"hook": name, "headers": headers, "body": read_json(request)})
        return Response(status=204)

    def _get_hooks(self, request: Request) -> Response:
        return json_response(self.hooks(request.args.get("name")))

    def _get_tickets(self, request: Request) -> Response:
        return json_response(self.tickets())

    def _delete_tickets(self, request: Request) -> Response:
        self.clear_tickets()
        return Response(status=204)


def _validate_batch(batch: Any) -> list[Json]:
    """Check the whole batch before storing any of it, so a 400 never leaves a half-applied batch."""
    if not isinstance(batch, list):
        raise ApiError(400, "body must be a JSON array of tickets", code="invalid_request")
    if len(batch) > MAX_BATCH:
        message = f"at most {MAX_BATCH} tickets per batch, got {len(batch)}"
        raise ApiError(400, message, code="batch_too_large")
    for index, ticket in enumerate(batch):
        if not isinstance(ticket, dict):
            raise ApiError(400, f"[{index}] must be an object", code="invalid_request", field=f"[{index}]")
        for name in REQUIRED_TICKET_FIELDS:
            if ticket.get(name) in (None, ""):
                field = f"[{index}].{name}"
                raise ApiError(400, f"{field} is required", code="invalid_request", field=field)
    return batch
