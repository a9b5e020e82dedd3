"""The consent workflow's demo: opt-outs from the web, the IVR, an agent and SMS STOPs, a duplicate,
opt-ins (one before an opt-out, one after the opt-out reached CXone), across both CXone
environments of the local stack (primary, DNC group 1; emea, DNC group 7), with faults in both: emea
answers 503 twice, primary asks to wait (429, Retry-After). The summary shows every opted-out
number applied in every environment, with the lag from its request."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from local.builders import inbound_sms
from local.demos import DemoContext, Sent

GROUPS = {"primary": "1", "emea": "7"}
DNC_PATH = "/inContactAPI/services/v27.0/dnc-groups/{group}/records"
SYNC_TIMEOUT_SECONDS = 30.0


@dataclass
class Number:
    """One customer's number, how it was written, and what the scenario does with it."""

    e164: str
    typed: str
    region: str | None = None
    sent: list[Sent] = field(default_factory=list)
    ways_in: list[str] = field(default_factory=list)
    expect: str = "opted_out"

    @property
    def digits(self) -> str:
        return self.e164.lstrip("+")

    @property
    def masked(self) -> str:
        return "***" + self.digits[-4:]


class ConsentDemo:
    def __init__(self, demo: DemoContext) -> None:
        self.demo = demo
        self.numbers = {
            "web-us": Number("+14155553101", "(415) 555-3101"),
            "web-gb": Number("+442079460102", "020 7946 0102", region="GB"),
            "ivr-fr": Number("+33612345601", "tel:+33-6-12-34-56-01"),
            "ivr-us": Number("+14155553102", "415.555.3102"),
            "agent-de": Number("+4930901821", "+49 30 901821"),
            "sms-us": Number("+14155553103", "+14155553103"),
            "sms-es": Number("+34612345602", "+34612345602"),
            "in-then-out": Number("+61293744001", "(02) 9374 4001", region="AU"),
            "out-then-in": Number("+14155553104", "+1 415 555 3104", expect="opted_in"),
        }
        self.bad: list[Sent] = []

    # Sending ---------------------------------------------------------------------------------

    def send(self) -> None:
        cxone = self.demo.stack.cxone
        cxone.add_fault(status=503, path_prefix=DNC_PATH.format(group=GROUPS["emea"]), count=2)
        cxone.add_fault(
            status=429, retry_after=1, path_prefix=DNC_PATH.format(group=GROUPS["primary"]), count=1
        )
        n = self.numbers
        self._opt_out(n["web-us"], "web")
        self._opt_out(n["web-us"], "web", typed="+1 415 555 3101")  # a double click: sent once
        self._opt_out(n["web-gb"], "web")
        self._opt_out(n["ivr-fr"], "ivr")
        self._opt_out(n["ivr-us"], "ivr")
        self._opt_out(n["agent-de"], "agent")
        self._stop(n["sms-us"], "STOP")
        self._stop(n["sms-es"], "BAJA")
        self._opt_in(n["in-then-out"], "web", "signup form, double opt-in")
        self._opt_out(n["in-then-out"], "ivr")
        self._opt_out(n["out-then-in"], "ivr")
        self.bad = self.demo.post_all(
            "/opt-out",
            [
                Sent("possible but not valid", {"phone": "+1 099 555 0100", "source": "web"}, expected=422),
                Sent("unknown source", {"phone": "+14155553105", "source": "email"}, expected=422),
                Sent(
                    "unknown region",
                    {"phone": "020 7946 0103", "source": "web", "region": "ZZ"},
                    expected=422,
                ),
            ],
        )
        # The customer opts back in once the opt-out is in both environments' DNC groups.
        self._wait_until_in_every_group(n["out-then-in"])
        self._opt_in(n["out-then-in"], "agent", "consent given on a recorded call")

    def _opt_out(self, number: Number, source: str, typed: str | None = None) -> None:
        body: dict[str, Any] = {"phone": typed or number.typed, "source": source}
        if number.region:
            body["region"] = number.region
        number.sent += self.demo.post_all("/opt-out", [Sent(f"{source} opt-out", body, expected=202)])
        number.ways_in.append(source)

    def _opt_in(self, number: Number, source: str, evidence: str) -> None:
        body: dict[str, Any] = {"phone": number.typed, "source": source, "evidence": evidence}
        if number.region:
            body["region"] = number.region
        number.sent += self.demo.post_all("/opt-in", [Sent(f"{source} opt-in", body, expected=200)])
        number.ways_in.append(f"{source} opt-in")

    def _stop(self, number: Number, text: str) -> None:
        message = inbound_sms(
            f"demo-{self.demo.run}-stop-{number.digits}", text, sender=number.e164, opt_in=False
        )
        number.sent += self.demo.post_all("/sms/inbound", [Sent(f"SMS {text}", message, expected=202)])
        number.ways_in.append("sms")

    def _wait_until_in_every_group(self, number: Number) -> None:
        deadline = time.monotonic() + SYNC_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            dnc = self.demo.stack.cxone.state()["dnc"]
            if all(number.digits in dnc.get(group, []) for group in GROUPS.values()):
                return
            time.sleep(0.2)

    # Summary ---------------------------------------------------------------------------------

    def summarise(self) -> tuple[list[str], list[str]]:
        problems: list[str] = []
        dnc = self.demo.stack.cxone.state()["dnc"]
        groups = {name: set(dnc.get(group, [])) for name, group in GROUPS.items()}
        audit = self.demo.audit_records("consent")
        applied: dict[tuple[str, str], str] = {}  # (masked number, environment) -> applied at
        lag: dict[str, float] = {}
        for record in audit:
            details = record.get("details") or {}
            if record["action"] in {"dnc_applied", "dnc_already_synced"}:
                applied.setdefault((record["phone_masked"], details["environment"]), details["applied_at"])
            if record["action"] == "dnc_complete":
                masked = record["phone_masked"]
                lag[masked] = max(lag.get(masked, 0.0), float(details["lag_seconds"]))
        lines = [
            "Opt-out and consent (CXone environments: primary, DNC group 1; emea, DNC group 7)",
            f"  {'number':<10} {'ways in':<22} {'consent':<10} {'primary':<17} {'emea':<17} lag",
        ]
        for number in self.numbers.values():
            wrong = [f"{s.label} got {s.status}" for s in number.sent if s.status != s.expected]
            consent = self._consent(number)
            where = {name: number.digits in members for name, members in groups.items()}
            cells = [
                f"{'applied ' + applied[(number.masked, name)][11:19] if where[name] else 'not listed':<17}"
                for name in GROUPS
            ]
            shown_lag = f"{lag[number.masked]:.1f} s" if number.masked in lag else "-"
            ways_in = ", ".join(number.ways_in)
            lines.append(f"  {number.masked:<10} {ways_in:<22} {consent:<10} {' '.join(cells)} {shown_lag}")
            if wrong:
                problems.append(f"{number.masked}: {', '.join(wrong)}")
            if consent != number.expect:
                problems.append(f"{number.masked}: consent {consent}, want {number.expect}")
            if not all(where.values()):
                # Every number here opted out at some point: each must be in every environment.
                problems.append(f"{number.masked} is not in every environment's DNC group")
        faults = Counter(
            (name, call["status"])
            for name, group in GROUPS.items()
            for call in self.demo.stack.cxone.requests(path_prefix=DNC_PATH.format(group=group))
        )
        calls = {name: sum(n for (env, _), n in faults.items() if env == name) for name in GROUPS}
        dead = self.demo.dead_letters("OptOutDLQ")
        lines += [
            "  DNC calls              "
            + "; ".join(
                f"{name} {calls[name]} ("
                + ", ".join(
                    f"HTTP {status} x{n}" for (env, status), n in sorted(faults.items()) if env == name
                )
                + ")"
                for name in GROUPS
            ),
            "  refused requests       "
            + ", ".join(
                f"{s.label} {s.status}{'' if s.status == s.expected else ' WRONG'}" for s in self.bad
            ),
            f"  DNC groups             primary {len(groups['primary'])} numbers, emea {len(groups['emea'])}"
            " (with the inbound section's STOPs)",
            "  opted back in          "
            + ", ".join(n.masked for n in self.numbers.values() if n.expect == "opted_in")
            + " after its opt-out reached CXone: outbound may message it again; the DNC records stay",
            f"  in the opt-out DLQ     {len(dead)}",
            f"  audit records          {len(audit)}",
            f"  accounted for          {sum(1 for n in self.numbers.values() if self._everywhere(n, groups))}"
            f"/{len(self.numbers)} numbers in every environment",
        ]
        problems += [
            f"{s.label}: got {s.status}, want {s.expected}" for s in self.bad if s.status != s.expected
        ]
        if groups["primary"] != groups["emea"]:
            problems.append("the two environments' DNC groups differ")
        if dead:
            problems.append(f"{len(dead)} opt-outs in the DLQ")
        return lines, problems

    def _everywhere(self, number: Number, groups: dict[str, set[str]]) -> bool:
        return all(number.digits in members for members in groups.values())

    def _consent(self, number: Number) -> str:
        """The number's status as an agent sees it: GET /consent/{phone} through the API."""
        response = self.demo.api.get(
            f"{self.demo.stack.front_url}/consent/{quote(number.e164, safe='')}", timeout=30
        )
        body = response.json() if response.content else {}
        return str(body.get("status", f"HTTP {response.status_code}"))
