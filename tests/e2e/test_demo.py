"""`make demo` runs the whole bundle on its embedded defaults and accounts for every accepted
request; CI runs it here so the README's first command cannot silently break."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from local.template import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("demo")]


# The whole bundle's scenario, five workflows: longer than the suite's 120 s default on a loaded
# two-core machine (it took 120 s with the outbound section under `make test`'s two workers).
@pytest.mark.timeout(360)
def test_demo_accounts_for_every_accepted_request() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "local.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=330,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    output = completed.stdout
    accounted = re.search(r"accounted for\s+(\d+)/(\d+) accepted", output)
    assert accounted and accounted.group(1) == accounted.group(2) and int(accounted.group(2)) >= 10
    assert re.search(r"in DLQ\s+1 \(", output)  # the message CXone refuses ends in the DLQ
    assert re.search(r"keyword actions\s+help 1, opt_in 1, opt_out 1", output)
    assert "queues drained: True" in output
    # DTMF: the ended session and the refusal are final, every other accepted request was sent.
    assert re.search(r"not sent: refused 1, session_ended 1\n", output)
    assert re.search(r"accuracy rate\s+\d+\.\d% \(sent / submitted\)", output)
    assert re.search(r"latency accept->CXone\s+p50 \d+ ms, p95 \d+ ms", output)
    # Outbound: every recipient sent, refused or held; final statuses reached CXone.
    assert re.search(r"accounted for\s+5/5 recipients", output)
    assert re.search(r"CXone statuses\s+delivered, failed \(\d+ call\(s\)\)\n", output)
    assert "identical bytes, nothing sent again: True" in output
    # Opt-outs from every way in, in both CXone environments, despite emea's 503s and a 429.
    assert re.search(r"accounted for\s+9/9 numbers in every environment", output)
    assert re.search(r"emea \d+ \(HTTP 200 x\d+, HTTP 503 x2\)", output)
    assert re.search(r"primary \d+ \(HTTP 200 x\d+, HTTP 429 x1\)", output)
