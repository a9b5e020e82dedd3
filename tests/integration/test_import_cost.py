"""The API handler cold-starts without what only consumers need, checked in a fresh interpreter.

The handler initialises for real (settings, secrets) against moto in server mode, as it would in
a new Lambda container. The test asserts which modules it loads, never how long that takes (a
loaded CI machine must not fail it): timings belong to `make bench`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest
from moto.server import ThreadedMotoServer

from local.provision import provision
from local.runtime import free_ports
from local.template import ROOT

MEASURE_HANDLER = """
import importlib.util, json, sys, time
import botocore.session
sessions = []
def counted(self, *args, _original=botocore.session.Session.__init__, **kwargs):
    sessions.append(self)
    _original(self, *args, **kwargs)
botocore.session.Session.__init__ = counted
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.perf_counter() - started
print(json.dumps({{"seconds": elapsed, "modules": sorted(sys.modules), "sessions": len(sessions)}}))
"""
# Language models, sentiment, numerics; and the machinery only consumers use (the CXone client
# and its HTTP stack, the batch processor): an API handler validates and queues, nothing more.
# The X-Ray SDK loads on the first sampled invocation, not at import (observability.py).
NOT_IN_AN_API_HANDLER = (
    "aws_xray_sdk",
    "lingua",
    "vaderSentiment",
    "numpy",
    "requests",
    "cxone_relay.platform.cxone",
    "cxone_relay.platform.consumer",
    "aws_lambda_powertools.utilities.batch",
)


@pytest.fixture(scope="module")
def moto_server():
    [port] = free_ports(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def provisioned(moto_server):
    """The template's resources, once for the module's moto server (module-scoped, so it brings
    its own fake credentials rather than the per-test environment's)."""
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return provision(session=session, endpoint_url=moto_server)


def _run(script: str, env: dict[str, str]) -> dict:
    completed = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("function_id", "code_dir", "initialised"),
    [
        ("InboundSmsApiFunction", "inbound_sms_api", "cxone_relay.workflows.inbound_sms.intake"),
        ("DtmfApiFunction", "dtmf_api", "cxone_relay.workflows.dtmf.intake"),
        ("ConsentApiFunction", "consent_api", "cxone_relay.workflows.consent.intake"),
        ("OutboundSmsApiFunction", "outbound_sms_api", "cxone_relay.workflows.outbound_sms.intake"),
        ("DeliveryWebhookFunction", "delivery_webhook", "cxone_relay.workflows.outbound_sms.delivery"),
    ],
)
def test_api_handler_import_loads_nothing_only_consumers_need(
    moto_server, provisioned, function_id, code_dir, initialised
):
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("PYTEST")},
        **provisioned.function_environment(function_id),
        "AWS_ENDPOINT_URL": moto_server,
        "PYTHONPATH": str(ROOT / "layers" / "common"),
    }
    handler_script = MEASURE_HANDLER.format(path=str(ROOT / "functions" / code_dir / "app.py"))

    measured = _run(handler_script, env)
    loaded = measured["modules"]

    assert initialised in loaded  # the handler did initialise
    # Every client from one botocore session: each more session loads the endpoint rules and
    # service models again (Powertools' secrets provider built its own, ~30 ms of CPU).
    assert measured["sessions"] == 1
    unwanted = sorted(
        name
        for name in loaded
        if any(name == root or name.startswith(root + ".") for root in NOT_IN_AN_API_HANDLER)
    )
    assert unwanted == []


def test_inbox_pull_handler_loads_vader_and_lingua_only_when_it_classifies(
    moto_server, provisioned, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("PYTEST")},
        **provisioned.function_environment("InboxPullFunction"),
        "AWS_ENDPOINT_URL": moto_server,
        "PYTHONPATH": str(ROOT / "layers" / "common"),
    }
    handler_script = MEASURE_HANDLER.format(path=str(ROOT / "functions" / "inbox_pull" / "app.py"))

    loaded = _run(handler_script, env)["modules"]

    assert "cxone_relay.workflows.social_inbox.puller" in loaded  # the handler did initialise
    assert not [name for name in loaded if name.split(".")[0] in {"vaderSentiment", "lingua"}]
