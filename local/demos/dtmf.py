"""The DTMF workflow's demo: a first request (the consumer's cold start), then valid requests (a
burst, for latency), one CXone throttles at first, one to a session that has ended, one CXone
refuses, and invalid ones; then each result, the accuracy rate (sent / submitted) and the
accept-to-CXone latency (p50, p95) of the later sends, the first one's cold start shown apart."""

from __future__ import annotations

import json
import math
import statistics
import time
from collections import Counter

from local.builders import dtmf_request, peek_messages
from local.demos import DemoContext, Sent

PATH = "/dtmf"
SEND_DTMF = "/inContactAPI/services/v23.0/agent-sessions/"
FINAL_ACTIONS = ("dtmf_sent", "dtmf_not_sent")


def dtmf_scenario(run: str, burst: int) -> list[Sent]:
    def session(name: str) -> str:
        return f"demo-{run}-{name}"

    warm_up = Sent(
        "first request (cold start)", dtmf_request(session("agent-0"), "0#", timeout_ms=30000), expected=202
    )
    valid = [
        Sent(
            f"valid #{n + 1}",
            dtmf_request(session(f"agent-{n % 3}"), f"{n}#", timeout_ms=30000),
            expected=202,
        )
        for n in range(burst)
    ]
    return [
        warm_up,
        *valid,
        Sent(
            "throttled twice, then sent",
            dtmf_request(session("agent-0"), "*55#", timeout_ms=30000),
            expected=202,
        ),
        Sent("ended session (404)", dtmf_request(session("hung-up"), "0", timeout_ms=30000), expected=202),
        Sent(
            "CXone refuses it (400)", dtmf_request(session("agent-1"), "999#", timeout_ms=30000), expected=202
        ),
        Sent(
            "explicit tones",
            dtmf_request(session("agent-2"), "12", timeout_ms=30000, tone_duration_ms=80, tone_spacing_ms=60),
            expected=202,
        ),
        Sent("full-width digits", dtmf_request(session("agent-0"), "１２"), expected=422),  # noqa: RUF001
        Sent("17 digits", dtmf_request(session("agent-0"), "1" * 17), expected=422),
        Sent("digits with a space", dtmf_request(session("agent-0"), "1 2"), expected=422),
        Sent('timeout_ms "5000"', dtmf_request(session("agent-0")) | {"timeout_ms": "5000"}, expected=422),
        Sent("timeout_ms 999", dtmf_request(session("agent-0"), timeout_ms=999), expected=422),
        Sent(
            'node_transition_flag "true"',
            dtmf_request(session("agent-0")) | {"node_transition_flag": "true"},
            expected=422,
        ),
        Sent("tone_duration_ms 5000", dtmf_request(session("agent-0"), tone_duration_ms=5000), expected=422),
        Sent("malformed JSON", '{"interaction_id": "x", "digits": ', expected=400),
    ]


class DtmfDemo:
    def __init__(self, demo: DemoContext, burst: int = 20) -> None:
        self.demo = demo
        self.scenario = dtmf_scenario(demo.run, burst)

    def send(self) -> None:
        cxone = self.demo.stack.cxone
        sessions = {s.payload["interaction_id"] for s in self.scenario if isinstance(s.payload, dict)}
        cxone.add_agent_sessions(sorted(str(s) for s in sessions if not str(s).endswith("hung-up")))
        cxone.add_fault(status=429, retry_after=0, count=2, body_contains='"*55#"', path_prefix=SEND_DTMF)
        cxone.add_fault(status=400, body_contains='"999#"', path_prefix=SEND_DTMF)
        # The first request alone, waited for: its latency includes the consumer's cold start,
        # which the summary shows apart from the later sends.
        first, *rest = self.scenario
        self.demo.post_all(PATH, [first])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self._final_of(first):
            time.sleep(0.1)
        self.demo.post_all(PATH, rest)

    def _final_of(self, sent: Sent) -> bool:
        return any(
            r["subject"] == sent.answer.get("id") and r["action"] in FINAL_ACTIONS
            for r in self.demo.audit_records("dtmf")
        )

    def summarise(self) -> tuple[list[str], list[str]]:
        return summarise_dtmf(self.demo, self.scenario)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (the value below which `fraction` of them lie)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summarise_dtmf(demo: DemoContext, scenario: list[Sent]) -> tuple[list[str], list[str]]:
    """Lines to print, and problems: wrong answers, and accepted requests not accounted for."""
    audit = demo.audit_records("dtmf")
    finals = {r["subject"]: r for r in audit if r["action"] in FINAL_ACTIONS}
    webhook = Counter(r["action"] for r in audit if r["action"].startswith("audit_webhook"))
    dead = {json.loads(body)["id"] for body in _dead_bodies(demo)}
    problems: list[str] = []
    lines = ["DTMF"]
    for sent in scenario:
        request_id = sent.answer.get("id")
        final = finals.get(str(request_id)) if request_id else None
        if sent.status == 202:
            result = final["outcome"] if final else "unaccounted"
            if final is not None and final["outcome"] == "ok":
                result = f"sent ({final['details']['latency_ms']:.0f} ms)"
            if request_id in dead:
                result += ", in DLQ"
        else:
            fields = ", ".join(f["field"] for f in sent.answer.get("fields", [])) or sent.answer.get(
                "error", ""
            )
            result = f"refused: {fields}"
        ok = sent.status == sent.expected and (sent.status != 202 or final is not None or request_id in dead)
        lines.append(f"  {sent.label:<30} {sent.status} {result:<34} {'ok' if ok else 'WRONG'}")
        if not ok:
            problems.append(
                f"DTMF {sent.label} (got {sent.status}{', unaccounted' if sent.status == 202 else ''})"
            )
    submitted = len(scenario)
    sent_ok = [r for r in finals.values() if r["outcome"] == "ok" and r["subject"] in _ids(scenario)]
    cold = str(scenario[0].answer.get("id"))
    latencies = [float(r["details"]["latency_ms"]) for r in sent_ok if r["subject"] != cold]
    not_sent = Counter(
        r["outcome"] for r in finals.values() if r["outcome"] != "ok" and r["subject"] in _ids(scenario)
    )
    lines += [
        f"  submitted              {submitted} ({sum(s.status == 202 for s in scenario)} accepted,"
        f" {sum(s.status != 202 for s in scenario)} refused at validation)",
        f"  sent to CXone          {len(sent_ok)}; not sent: "
        + (", ".join(f"{k} {n}" for k, n in sorted(not_sent.items())) or "none"),
        f"  accuracy rate          {100 * len(sent_ok) / submitted:.1f}% (sent / submitted)",
    ]
    if latencies:
        p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
        lines.append(
            f"  latency accept->CXone  p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {max(latencies):.0f} ms"
            f" over the {len(latencies)} later sends (mean {statistics.mean(latencies):.0f} ms; a burst"
            " starts more consumer environments, each with its own cold start)"
        )
    if cold in finals and finals[cold]["outcome"] == "ok":
        lines.append(f"  first (cold start)     {float(finals[cold]['details']['latency_ms']):.0f} ms")
    lines.append(
        f"  audit webhook          {webhook['audit_webhook_delivered']} delivered,"
        f" {webhook['audit_webhook_failed']} failed (ticketing simulator /hooks/dtmf-audit)"
    )
    return lines, problems


def _ids(scenario: list[Sent]) -> set[str]:
    return {str(s.answer["id"]) for s in scenario if s.status == 202 and "id" in s.answer}


def _dead_bodies(demo: DemoContext) -> list[str]:
    return [
        body
        for body, _ in peek_messages(
            demo.stack.boto3_session_client("sqs"), demo.stack.resources().queues["DtmfDLQ"], rounds=5
        )
    ]
