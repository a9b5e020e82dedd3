"""The outbound SMS and delivery status demo. Recipients opt in by texting START through the local
stack (one then texts STOP, one never opts in); a campaign goes to all of them, with an
Idempotency-Key that is then replayed, and a dry run; then the demo plays the SMS channel, posting
signed delivery reports (delivered, failed, a duplicate, one out of order, one unsigned).

Quiet hours run on the real clock, so the demo picks its recipients by time zone: two numbers
whose window is open now, and one whose window is closed now (its message is held, with sendAfter).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
import requests
from phonenumbers import timezone

from local.builders import inbound_sms
from local.demos import DemoContext

PATH = "/sms/outbound"
STATUS_PATH = "/sms/status"
HOOK = "outbound-status"
# One number per zone, round the world: at any hour some are in their window and some are not.
CANDIDATES = (
    "+12125550161",  # New York
    "+13105550162",  # Los Angeles
    "+18085550163",  # Honolulu
    "+442071838750",  # London
    "+33142685300",  # Paris
    "+919876543210",  # India
    "+81312345678",  # Tokyo
    "+61291234567",  # Sydney
)
NO_CONSENT = "+12125550164"
OPTED_OUT = "+12125550165"
OUR_NUMBER = "+14155550100"
WAIT_SECONDS = 60


def _local_hours(phone: str, now: datetime) -> list[int]:
    return [
        now.astimezone(ZoneInfo(zone)).hour
        for zone in timezone.time_zones_for_number(phonenumbers.parse(phone))
    ]


def pick_recipients(now: datetime) -> tuple[list[str], str]:
    """(two numbers well inside their 08:00-21:00 window now, one well outside it), an hour's
    margin either side so the verdict cannot change while the demo runs."""
    open_now = [p for p in CANDIDATES if all(9 <= hour < 20 for hour in _local_hours(p, now))]
    closed = [p for p in CANDIDATES if all(hour < 7 or hour >= 22 for hour in _local_hours(p, now))]
    return open_now[:2], closed[0]


def sign(secret: str, body: bytes, at: int) -> str:
    """X-Signature as the SMS channel computes it (README, delivery status)."""
    return f"t={at},v1={hmac.new(secret.encode(), f'{at}.'.encode() + body, hashlib.sha256).hexdigest()}"


def wait_until(probe: Callable[[], bool], seconds: float = WAIT_SECONDS) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(0.25)
    return False


class OutboundSmsDemo:
    def __init__(self, demo: DemoContext) -> None:
        self.demo = demo
        self.open_now, self.held_number = pick_recipients(datetime.now(UTC))
        self.recipients = [*self.open_now, NO_CONSENT, OPTED_OUT, self.held_number]
        self.answer: dict[str, Any] = {}
        self.replay_identical = False
        self.dry_run: dict[str, Any] = {}
        self.reports: list[tuple[str, int]] = []
        self.sweep: dict[str, Any] = {}

    def _texts_by_sms(self, phone: str, word: str, name: str) -> None:
        body = inbound_sms(f"demo-{self.demo.run}-out-{name}", word, sender=phone, opt_in=False)
        self.demo.api.post(f"{self.demo.stack.front_url}/sms/inbound", json=body, timeout=30)

    def _replied_to(self, phones: set[str], count: int = 1) -> bool:
        outbound = self.demo.stack.cxone.state()["outbound"]
        replies = [o["recipients"][0]["idOnExternalPlatform"] for o in outbound]
        return all(replies.count(phone) >= count for phone in phones)

    def send(self) -> None:
        opted_in = {*self.open_now, self.held_number, OPTED_OUT}
        for n, phone in enumerate(sorted(opted_in)):
            self._texts_by_sms(phone, "START", f"start-{n}")
        wait_until(lambda: self._replied_to(opted_in))
        self._texts_by_sms(OPTED_OUT, "STOP", "stop")
        wait_until(lambda: self._replied_to({OPTED_OUT}, count=2))

        campaign = {
            "to": self.recipients,
            "from": OUR_NUMBER,
            "text": "Spring sale: 20% off everything until Sunday \u2014 reply STOP to opt out",
            "campaignId": f"demo-{self.demo.run}",
            "smartEncoding": True,
            "webhookUrl": f"{self.demo.stack.ticketing.url}/hooks/{HOOK}",
        }
        key = {"Idempotency-Key": f"demo-{self.demo.run}"}
        url = f"{self.demo.stack.front_url}{PATH}"
        first = self.demo.api.post(url, json=campaign, headers=key, timeout=30)
        second = self.demo.api.post(url, json=campaign, headers=key, timeout=30)
        self.answer = first.json()
        self.replay_identical = (
            first.status_code == second.status_code == 202 and first.content == second.content
        )
        self.dry_run = self.demo.api.post(url, json=campaign | {"dryRun": True}, timeout=30).json()

        ids = {m["to"]: m["messageId"] for m in self.answer.get("messages", [])}
        wait_until(lambda: self._replied_to(set(self.open_now), count=2))
        first_open, second_open = self.open_now
        now = datetime.now(UTC)
        for phone, status, seconds in (
            (first_open, "sent", 1),
            (first_open, "delivered", 4),
            (first_open, "delivered", 5),  # the channel says it again
            (second_open, "failed", 4),
            (first_open, "sent", 2),  # late: after delivered, it must not move the status back
        ):
            self._report(ids.get(phone, "missing"), phone, status, now + timedelta(seconds=seconds))
        self._report(ids.get(first_open, "missing"), first_open, "failed", now, signed=False)
        self.sweep = requests.post(
            f"{self.demo.stack.front_url}/_local/schedules/HeldMessageReleaseFunction", timeout=60
        ).json()

    def _report(self, message_id: str, phone: str, status: str, now: datetime, signed: bool = True) -> None:
        body = json.dumps(
            {"messageId": message_id, "status": status, "to": phone, "timestamp": now.isoformat()}
        ).encode()
        headers = {"content-type": "application/json"}
        if signed:
            headers["X-Signature"] = sign(self.demo.stack.webhook_secret, body, int(time.time()))
        answer = requests.post(
            f"{self.demo.stack.front_url}{STATUS_PATH}", data=body, headers=headers, timeout=30
        )
        self.reports.append((status if signed else f"{status} (unsigned)", answer.status_code))
        time.sleep(0.3)  # one report at a time, in order, as a channel sends them

    def summarise(self) -> tuple[list[str], list[str]]:
        wait_until(lambda: len(self.demo.stack.cxone.state()["statuses"]) >= 2, 30)
        state = self.demo.stack.cxone.state()
        # Per message: two copies of a final report handled at the same moment may both pass it
        # on (same status, same Idempotency-Key), so what counts is what each message ended as.
        final_statuses = {(s["idOnExternalPlatform"], s["status"]) for s in state["statuses"]}
        sent_to = [o["recipients"][0]["idOnExternalPlatform"] for o in state["outbound"]]
        campaign_text = [
            o["messageContent"]["payload"]["text"]
            for o in state["outbound"]
            if o["messageContent"]["payload"]["text"].startswith("Spring sale")
        ]
        messages = {m["to"]: m for m in self.answer.get("messages", [])}
        refused = {r["to"]: r["reasons"] for r in self.answer.get("refused", [])}
        hooks = self.demo.stack.ticketing.hooks(HOOK)
        audit = self.demo.audit_records("delivery-status")
        ignored = sorted(r["action"] for r in audit if r["outcome"] == "ignored")
        problems: list[str] = []
        lines = ["Outbound SMS and delivery status"]
        for phone in self.recipients:
            masked = "***" + phone[-4:]
            if phone in refused:
                fate = "refused: " + ", ".join(refused[phone])
            elif messages.get(phone, {}).get("status") == "held":
                fate = f"held until {messages[phone]['sendAfter']} (outside 08:00-21:00 local)"
            elif phone in messages and sent_to.count(phone) >= 2:  # START reply + the campaign
                fate = "sent"
            else:
                fate = "UNACCOUNTED"
                problems.append(f"outbound recipient {masked}")
            lines.append(f"  {masked:<14} {fate}")
        unaccounted, total = len(problems), len(self.recipients)
        expected = {NO_CONSENT: ["no-consent"], OPTED_OUT: ["opted-out"]}
        if any(refused.get(phone) != reasons for phone, reasons in expected.items()):
            problems.append("outbound refusals")
        if messages.get(self.held_number, {}).get("status") != "held":
            problems.append("outbound held message")
        if not self.replay_identical:
            problems.append("Idempotency-Key replay")
        text = campaign_text[0] if campaign_text else "-"
        encoding = self.answer.get("encoding")
        lines += [
            f"  segments               {self.answer.get('segments')} ({encoding}, smart-encoded: {text!r})",
            f"  Idempotency-Key replay identical bytes, nothing sent again: {self.replay_identical}",
            f"  dry run (200)          {len(self.dry_run.get('messages', []))} would be queued or held,"
            f" {len(self.dry_run.get('refused', []))} refused, {self.dry_run.get('characters')} characters",
            "  reports posted         " + ", ".join(f"{status} {code}" for status, code in self.reports),
            "  CXone statuses         "
            + ", ".join(sorted(status for _, status in final_statuses))
            + f" ({len(state['statuses'])} call(s))",
            f"  webhookUrl callbacks   {len(hooks)} ("
            + ", ".join(sorted(h["body"]["status"] for h in hooks))
            + ")",
            "  ignored reports        " + (", ".join(ignored) or "none"),
            f"  release sweep          {self.sweep.get('outcome')}, released {self.sweep.get('released')}",
            f"  accounted for          {total - unaccounted}/{total} recipients",
        ]
        if sorted(status for _, status in final_statuses) != ["delivered", "failed"]:
            problems.append("final statuses to CXone")
        if [code for status, code in self.reports if "unsigned" in status] != [401]:
            problems.append("unsigned report not refused")
        return lines, problems
