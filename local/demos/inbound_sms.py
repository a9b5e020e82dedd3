"""The inbound SMS workflow's demo: a scenario across languages, keywords and refusals with CXone
faults injected, and a bad-input section of what a hostile client sends."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from local.builders import inbound_sms, iso_utc
from local.demos import DemoContext, Sent

PATH = "/sms/inbound"


def inbound_scenario(run: str) -> list[Sent]:
    def mid(name: str) -> str:
        return f"demo-{run}-{name}"

    def sms(message_id: str, body: str, **fields: Any) -> dict[str, Any]:
        return inbound_sms(message_id, body, **fields)

    return [
        Sent("billing (en)", sms(mid("billing"), "Hi, I was charged twice on my last invoice")),
        Sent("technical (en)", sms(mid("technical"), "The app shows an error when I try to login")),
        Sent("general (en)", sms(mid("general"), "Hello, what are your opening hours on Sunday?")),
        Sent("Spanish", sms(mid("es"), "Hola, necesito ayuda con la factura del mes pasado")),
        Sent("French", sms(mid("fr"), "Bonjour, je n'arrive pas à me connecter à mon compte")),
        Sent("Portuguese", sms(mid("pt"), "Olá, preciso de ajuda com o pagamento da minha conta")),
        Sent("German", sms(mid("de"), "Hallo, ich habe eine Frage zu meinem Vertrag")),
        Sent(
            "national-format sender",
            sms(mid("national"), "My payment did not go through", sender="(415) 555-2672"),
        ),
        Sent(
            "duplicate id (repeat of billing)",
            sms(mid("billing"), "Hi, I was charged twice on my last invoice"),
        ),
        Sent(
            "STOP (no consent needed)", sms(mid("stop"), "STOP please", opt_in=False, sender="+14155552673")
        ),
        Sent("START", sms(mid("start"), "START", sender="+14155552674")),
        Sent("HELP", sms(mid("help"), "HELP", opt_in=False, sender="+14155552675")),
        Sent("CXone refuses it (400)", sms(mid("poison"), "Please check my refund status")),
        Sent("spam", sms(mid("spam"), "Winner notification: you won a FREE LOTTERY, act now!")),
        Sent("no consent", sms(mid("no-consent"), "Can someone call me back?", opt_in=False)),
        Sent("invalid number", sms(mid("bad-number"), "Hello there", sender="+1 099 555 0000")),
        Sent("malformed JSON", '{"id": "demo-broken", "body": '),
    ]


def bad_input_scenario(run: str) -> list[Sent]:
    """What a hostile or careless client sends: each must get its 4xx, queue nothing and never 5xx;
    a STOP without consent is a revocation (202)."""
    message = inbound_sms(f"demo-{run}-hostile", "Hello")
    no_consent_stop = inbound_sms(
        f"demo-{run}-stop-no-consent", "Stop sending me messages", sender="+14155552676"
    )
    del no_consent_stop["opt_in"]
    week_old = datetime.now(UTC) - timedelta(days=8)
    return [
        Sent("JSON array of two messages", json.dumps([message, message]), expected=400),
        Sent("nested 1,200 levels deep", '{"id": "x", "a": ' + "[" * 1200 + "]" * 1200 + "}", expected=400),
        Sent(
            "lone surrogate in the id",
            json.dumps(message).replace('-hostile"', '-hostile\\ud800"'),
            expected=422,
        ),
        Sent(
            "Latin-1 body",
            json.dumps(message | {"body": "café"}, ensure_ascii=False).encode("latin-1"),
            expected=400,
        ),
        Sent("NUL in the text", json.dumps(message | {"body": "a\u0000b"}), expected=422),
        Sent('opt_in "yes"', message | {"opt_in": "yes"}, expected=422),
        Sent("a week-old timestamp", message | {"timestamp": iso_utc(week_old)}, expected=422),
        Sent("body over 64 KB", message | {"body": "x" * 70_000}, expected=413),
        Sent("STOP without opt_in (a revocation)", no_consent_stop, expected=202),
    ]


class InboundSmsDemo:
    def __init__(self, demo: DemoContext) -> None:
        self.demo = demo
        self.scenario = inbound_scenario(demo.run)

    def send(self) -> None:
        poison = next(s for s in self.scenario if s.label.startswith("CXone refuses"))
        cxone = self.demo.stack.cxone
        # A permanent refusal for one message, and 30% throttling (with and without Retry-After)
        # on every other CXone write while the batch is processed.
        cxone.add_fault(status=400, body_contains=f'"{poison.message_id}"', path_prefix="/dfo/3.0/channels")
        cxone.add_fault(
            status=429, rate=0.3, retry_after=1, path_prefix="/dfo/3.0/channels", seed=11, count=4
        )
        cxone.add_fault(
            status=429, rate=0.3, retry_after=None, path_prefix="/dfo/3.0/channels", seed=12, count=4
        )
        cxone.add_fault(status=503, rate=0.2, path_prefix="/dfo/3.0/channels", seed=13, count=2)
        self.demo.post_all(PATH, self.scenario)

    def summarise(self) -> tuple[list[str], list[str]]:
        return summarise_inbound(self.demo, self.scenario)


class BadInputDemo:
    def __init__(self, demo: DemoContext) -> None:
        self.demo = demo
        self.scenario = bad_input_scenario(demo.run)

    def send(self) -> None:
        self.demo.post_all(PATH, self.scenario)

    def summarise(self) -> tuple[list[str], list[str]]:
        return summarise_bad_input(self.demo, self.scenario)


def summarise_inbound(demo: DemoContext, scenario: list[Sent]) -> tuple[list[str], list[str]]:
    """Lines to print, and the accepted ids that are unaccounted for."""
    accepted_ids = sorted({s.message_id for s in scenario if s.status == 202 and s.message_id})
    duplicates = sum(1 for s in scenario if s.status == 202) - len(accepted_ids)
    rejected = Counter(
        (s.answer.get("reason") or s.answer.get("error") or str(s.status))
        for s in scenario
        if s.status != 202
    )
    keyword_ids = {s.message_id for s in scenario if s.status == 202 and s.answer.get("keyword")}
    state = demo.stack.cxone.state()
    stored = {m["idOnExternalPlatform"]: m for m in state["messages"].get("sms-channel", [])}
    senders = {s.payload.get("from") for s in scenario if isinstance(s.payload, dict)}
    replies = [r for r in state["outbound"] if r["recipients"][0]["idOnExternalPlatform"] in senders]
    # Other workflows upsert tickets too: count this one's (SMS) only.
    tickets = {t["external_id"]: t for t in demo.stack.ticketing.tickets() if t.get("channel") == "sms"}
    ticket_calls = [
        r
        for r in demo.stack.ticketing.requests(path_prefix="/api/v1/tickets")
        if r["status"] == 200 and any(t.get("channel") == "sms" for t in r["body"])
    ]
    dead = {body["id"] for body in demo.dead_letters("InboundSmsDLQ")}
    audit = demo.audit_records("inbound-sms")
    audit_by_subject: dict[str, list[dict[str, Any]]] = {}
    for record in audit:
        audit_by_subject.setdefault(record["subject"], []).append(record)
    keyword_actions = Counter(
        r["details"]["keyword"]
        for r in audit
        if r["action"] == "reply_sent" and r.get("details") and r["subject"] in keyword_ids
    )
    faults = Counter(
        r["status"] for r in demo.stack.cxone.requests(path_prefix="/dfo/3.0/channels") if r["status"] >= 400
    )
    routed = Counter(f"{t['category']}/{t['language']}→{t['queue']}" for t in tickets.values())

    unaccounted = []
    for message_id in accepted_ids:
        actions = {(r["action"], r["outcome"]) for r in audit_by_subject.get(message_id, [])}
        in_cxone = message_id in stored or (message_id in keyword_ids and ("reply_sent", "ok") in actions)
        explained = any(outcome == "permanent_failure" for _, outcome in actions)
        if not (in_cxone or message_id in dead or explained):
            unaccounted.append(message_id)

    dead_ids = ", ".join(sorted(dead)) or "none"
    opt_outs_waiting = demo.stack.queue_depth("OptOutQueue")
    lines = [
        "Inbound SMS",
        f"  requests sent          {len(scenario)}",
        f"  accepted (202)         {len(accepted_ids)} ids, of which {len(keyword_ids)} keywords"
        f" (+{duplicates} duplicate answered 202, queued once)",
        "  rejected               " + ", ".join(f"{reason} {n}" for reason, n in sorted(rejected.items())),
        f"  stored in CXone        {len(stored)}",
        "  routed                 " + ", ".join(f"{k} {n}" for k, n in sorted(routed.items())),
        f"  tickets upserted       {len(tickets)} in {len(ticket_calls)} batch call(s)",
        "  keyword actions        "
        + ", ".join(f"{k} {n}" for k, n in sorted(keyword_actions.items()))
        + f"; replies sent {len(replies)}; opt-outs still waiting for DNC sync {opt_outs_waiting}",
        "  CXone faults injected  " + ", ".join(f"HTTP {k} x{n}" for k, n in sorted(faults.items())),
        f"  in DLQ                 {len(dead)} ({dead_ids})",
        f"  audit records          {len(demo.audit_items('inbound-sms'))}, of {len(audit)} decisions",
        f"  accounted for          {len(accepted_ids) - len(unaccounted)}/{len(accepted_ids)} accepted",
    ]
    return lines, unaccounted


def summarise_bad_input(demo: DemoContext, scenario: list[Sent]) -> tuple[list[str], list[str]]:
    """Lines to print, and the cases that did not get the status they must get."""
    stored = {m["idOnExternalPlatform"] for m in demo.stack.cxone.state()["messages"].get("sms-channel", [])}
    replies = [r["recipients"][0]["idOnExternalPlatform"] for r in demo.stack.cxone.state()["outbound"]]
    lines, wrong = ["Bad input"], []
    for sent in scenario:
        what = sent.answer.get("keyword") or sent.answer.get("error") or sent.answer.get("message", "")
        ok = sent.status == sent.expected
        if sent.expected == 202:  # the revocation must have been honoured: a confirmation went out
            ok = ok and isinstance(sent.payload, dict) and sent.payload["from"] in replies
        elif isinstance(sent.payload, dict):  # refused: nothing of it may have reached CXone
            ok = ok and sent.payload["id"] not in stored
        lines.append(f"  {sent.label:<36} {sent.status} {what:<20} {'ok' if ok else 'WRONG'}")
        if not ok:
            wrong.append(f"{sent.label} (got {sent.status}, want {sent.expected})")
    return lines, wrong
