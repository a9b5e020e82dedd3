"""The social inbox's demo: conversations preloaded into the CXone simulator over its control
endpoint, the schedule triggered through the local stack's front (with a 429 on the listing), then
one conversation updated and the schedule triggered again: its ticket is upserted again, once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from local.builders import social_contact
from local.demos import DemoContext

FUNCTION = "InboxPullFunction"
PAGE_SIZE = 20
# (what the customer wrote, channel): a mix of urgent, unhappy, calm, shouted and non-English.
SCRIPT = [
    ("I want a refund, the headphones arrived broken", "FACEBOOK"),
    ("Your service is a disaster, worst company ever", "TWITTER"),
    ("The parcel is missing", "INSTAGRAM"),
    ("I lost my password", "WHATSAPP"),
    ("Where is my order?", "FACEBOOK"),
    ("Thanks for the quick answer, all sorted", "TWITTER"),
    ("WHERE IS MY ORDER", "INSTAGRAM"),
    ("I LOVE YOUR SHOP!!!", "WHATSAPP"),
    ("Hola, quiero un reembolso de mi pedido", "FACEBOOK"),
    ("Bonjour, merci beaucoup pour votre aide rapide", "TWITTER"),
    ("Hallo, ich möchte meinen Vertrag kündigen", "INSTAGRAM"),
    ("Please cancel my subscription immediately", "WHATSAPP"),
]
CONVERSATIONS = 48  # three pages of 20, the last one short
FOLLOW_UP = "Still nothing. This is a complaint!"


class SocialInboxDemo:
    def __init__(self, demo: DemoContext) -> None:
        self.demo = demo
        self.now = datetime.now(UTC)
        self.contacts = [
            social_contact(
                f"demo-{demo.run}-social-{n:02d}",
                SCRIPT[n % len(SCRIPT)][0],
                updated_at=self.now - timedelta(minutes=3 * (CONVERSATIONS - n) + 2),
                channel=SCRIPT[n % len(SCRIPT)][1],
            )
            for n in range(CONVERSATIONS)
        ]
        # Created before the 90-day retention limit: one the listing leaves out by its days, one
        # it serves (updated recently) that the relay drops on its own side.
        self.old = [
            social_contact(
                f"demo-{demo.run}-social-ancient", "refund please", updated_at=self.now - timedelta(days=120)
            ),
            social_contact(
                f"demo-{demo.run}-social-stale",
                "cancel it",
                created_at=self.now - timedelta(days=100),
                updated_at=self.now - timedelta(days=2),
            ),
        ]
        self.runs: list[dict[str, Any]] = []
        self.updated_id = self.contacts[4]["id"]  # "Where is my order?" -> an angry follow-up

    def _sim(self, path: str, body: Any) -> None:
        response = self.demo.api.post(f"{self.demo.stack.cxone.url}{path}", json=body, timeout=30)
        response.raise_for_status()

    def _trigger(self) -> dict[str, Any]:
        response = self.demo.api.post(f"{self.demo.stack.front_url}/_local/schedules/{FUNCTION}", timeout=120)
        result: dict[str, Any] = response.json()
        result["status"] = response.status_code
        self.runs.append(result)
        return result

    def send(self) -> None:
        self._sim("/_sim/contacts", self.contacts + self.old)
        self._sim("/_sim/page-size", {"page_size": PAGE_SIZE})
        throttle = {"status": 429, "retry_after": 1, "path_prefix": "/dfo/3.0/contacts", "count": 1}
        self._sim("/_sim/faults", throttle)
        first = self._trigger()
        # The customer writes again just after the first run's checkpoint: the next run takes the
        # conversation again and upserts its ticket (same id), and leaves the others alone.
        checkpoint = datetime.fromisoformat(str(first.get("checkpoint") or self.now.isoformat()))
        updated = next(c for c in self.contacts if c["id"] == self.updated_id)
        follow_up = social_contact(
            self.updated_id,
            "Where is my order?",
            created_at=datetime.fromisoformat(updated["createdAt"]),
            updated_at=checkpoint + timedelta(milliseconds=1),
            channel=updated["channel"],
        )
        follow_up["messages"].append(
            {
                "id": f"{self.updated_id}-in-2",
                "direction": "inbound",
                "createdAt": follow_up["updatedAt"],
                "messageContent": {"type": "TEXT", "payload": {"text": FOLLOW_UP}},
            }
        )
        self.contacts = [follow_up if c["id"] == self.updated_id else c for c in self.contacts]
        self._sim("/_sim/contacts", self.contacts + self.old)
        self._trigger()

    def summarise(self) -> tuple[list[str], list[str]]:
        ids = {c["id"] for c in self.contacts}
        ours = ids | {c["id"] for c in self.old}
        stored = self.demo.stack.ticketing.tickets()
        tickets = {t["external_id"]: t for t in stored if t["external_id"] in ours}
        calls = [
            [t["external_id"] for t in r["body"]]
            for r in self.demo.stack.ticketing.requests(path_prefix="/api/v1/tickets")
            if r["status"] == 200 and any(t.get("external_id") in ids for t in r["body"])
        ]
        upserts = Counter(external_id for call in calls for external_id in call)
        listing = self.demo.stack.cxone.requests(path_prefix="/dfo/3.0/contacts")
        throttled = [r for r in listing if r["status"] == 429]
        first, second = [*self.runs, {}, {}][:2]
        by_priority = Counter(t["priority"] for t in tickets.values())
        audit = self.demo.audit_records("social-inbox")

        problems = []
        if any(run.get("status") != 200 for run in self.runs):
            problems.append("an inbox pull run failed")
        if set(tickets) != ids:
            problems.append(f"{len(tickets)} social tickets for {len(ids)} conversations in retention")
        others = [n for key, n in upserts.items() if key != self.updated_id]
        if upserts[self.updated_id] != 2 or any(n != 1 for n in others):
            problems.append("a conversation was upserted more or less often than it changed")
        if tickets.get(self.updated_id, {}).get("priority") != "HIGH":
            problems.append("the updated conversation's ticket was not re-prioritised")
        if any(len(call) > 50 for call in calls):
            problems.append("a ticket call carried more than 50 tickets")
        if not throttled:
            problems.append("the listing's 429 never fired")

        lines = [
            "Social inbox",
            f"  conversations preloaded {len(self.contacts) + len(self.old)}"
            f" ({len(self.old)} created before the 90-day retention limit)",
            f"  run 1 (schedule)        {first.get('outcome')}: {first.get('pages')} pages,"
            f" {first.get('conversations')} conversations, dropped {first.get('dropped')}",
            "  by priority             "
            + ", ".join(f"{p} {n}" for p, n in sorted((first.get("by_priority") or {}).items())),
            f"  CXone 429 on listing    {len(throttled)}, honoured (Retry-After 1 s), page retried",
            f"  run 2 (after an update) {second.get('outcome')}: {second.get('conversations')} conversation"
            f" re-upserted ({self.updated_id} -> {tickets.get(self.updated_id, {}).get('priority')})",
            f"  tickets created         {len(tickets)} in {len(calls)} batch call(s) of at most 50; "
            + ", ".join(f"{p} {n}" for p, n in sorted(by_priority.items())),
            f"  checkpoint              {second.get('checkpoint')}"
            f" (lag {second.get('checkpoint_lag_seconds')} s)",
            f"  audit records           {len(audit)}",
        ]
        return lines, problems
