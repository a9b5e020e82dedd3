"""A bounded load run on the local stack: N inbound messages sent by concurrent clients while CXone
throttles a share of its calls, then the queues drained. Reports what matters for at-least-once
delivery: messages lost, CXone effects duplicated, and how long draining took.

    python -m local.load [--messages 200] [--throttle 0.3] [--environments 4] [--clients 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import requests

from local.builders import inbound_sms
from local.stack import LocalStack

CHANNELS = "/dfo/3.0/channels"


@dataclass
class LoadResult:
    messages: int
    throttle_rate: float
    environments: int
    accepted: int
    stored_once: int
    lost: int
    duplicated_cxone_effects: int
    throttled_answers: int
    dead_lettered: int
    send_seconds: float
    drain_seconds: float
    consumer_environments_started: int


def run(stack: LocalStack, messages: int, throttle: float, clients: int) -> LoadResult:
    run_id = uuid.uuid4().hex[:8]
    ids = [f"load-{run_id}-{n:04d}" for n in range(messages)]
    stack.cxone.add_fault(status=429, rate=throttle, retry_after=0, path_prefix=CHANNELS, seed=42)
    session = requests.Session()
    session.headers.update({"x-api-key": stack.api_key, "content-type": "application/json"})

    def send(index: int) -> int:
        # Distinct senders, so each message is its own conversation (and consent record).
        body = inbound_sms(
            ids[index], f"Question {index} about my invoice", sender=f"+1415555{index % 10000:04d}"
        )
        return session.post(f"{stack.front_url}/sms/inbound", data=json.dumps(body), timeout=30).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        statuses = list(pool.map(send, range(messages)))
    sent_at = time.monotonic()
    stack.wait_until_drained(timeout=300, interval=0.1)
    drained_at = time.monotonic()

    requests_seen = stack.cxone.requests(path_prefix=CHANNELS)
    landed = Counter(
        str(entry["body"].get("idOnExternalPlatform"))
        for entry in requests_seen
        if 200 <= entry["status"] < 300 and isinstance(entry["body"], dict)
    )
    stored = Counter(
        m["idOnExternalPlatform"]
        for m in stack.cxone.state()["messages"].get("sms-channel", [])
        if m["idOnExternalPlatform"] in ids
    )
    dead = stack.queue_depth("InboundSmsDLQ")
    accepted = sum(status == 202 for status in statuses)
    return LoadResult(
        messages=messages,
        throttle_rate=throttle,
        environments=stack.environments,
        accepted=accepted,
        stored_once=sum(stored[message_id] == 1 for message_id in ids),
        lost=sum(stored[message_id] == 0 for message_id in ids) - dead,
        duplicated_cxone_effects=sum(max(0, landed[message_id] - 1) for message_id in ids),
        throttled_answers=sum(entry["status"] == 429 for entry in requests_seen),
        dead_lettered=dead,
        send_seconds=round(sent_at - started, 2),
        drain_seconds=round(drained_at - sent_at, 2),
        consumer_environments_started=stack.runtimes["InboundSmsConsumerFunction"].environments,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--throttle", type=float, default=0.3, help="share of CXone calls answered 429")
    parser.add_argument("--environments", type=int, default=4, help="execution environments per function")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    args = parser.parse_args(argv)
    with LocalStack(port=0, retry_delay_seconds=1, environments=args.environments) as stack:
        result = run(stack, args.messages, args.throttle, args.clients)
    report: dict[str, Any] = asdict(result)
    print(json.dumps(report, indent=2))
    return 0 if result.lost == 0 and result.duplicated_cxone_effects == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
