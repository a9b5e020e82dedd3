"""`make demo`: the whole bundle end to end on the local stack, on its embedded defaults.

Starts the stack, sends each workflow's scenario (with injected CXone faults), waits for the
queues to drain, prints what happened, and exits non-zero if any accepted request is unaccounted
for: each must have reached CXone, a DLQ, or an audit record that says why not. Each workflow's
part lives in local/demos/<workflow>.py and is listed in SECTIONS.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from local.demos import DemoContext, DemoSection
from local.demos.consent import ConsentDemo
from local.demos.dtmf import DtmfDemo
from local.demos.inbound_sms import BadInputDemo, InboundSmsDemo
from local.demos.outbound_sms import OutboundSmsDemo
from local.demos.social_inbox import SocialInboxDemo
from local.stack import LocalStack

SECTIONS: list[Callable[[DemoContext], DemoSection]] = [
    DtmfDemo,
    InboundSmsDemo,
    BadInputDemo,
    SocialInboxDemo,
    ConsentDemo,
    OutboundSmsDemo,
]


def main() -> int:
    started = time.monotonic()
    stack = LocalStack(port=0, retry_delay_seconds=1)
    stack.start()
    try:
        startup = time.monotonic() - started
        demo = DemoContext(stack)
        sections = [make(demo) for make in SECTIONS]
        for section in sections:
            section.send()
        drained = stack.wait_until_drained(timeout=90)
        print(f"\ncxone-relay demo: local stack up in {startup:.1f}s; queues drained: {drained}")
        problems: list[str] = []
        for section in sections:
            lines, found = section.summarise()
            print("\n" + "\n".join(lines))
            problems.extend(found)
        elapsed = time.monotonic() - started
        if problems or not drained:
            print(f"\nFAILED after {elapsed:.1f}s: {', '.join(problems) or 'queues did not drain'}")
            return 1
        print(f"\nOK: every accepted request is accounted for ({elapsed:.1f}s)")
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
