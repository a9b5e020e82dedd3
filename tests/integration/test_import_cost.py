"""The API handler cold-starts without the language detector, measured in fresh interpreters.

The handler initialises for real (settings, secrets) against moto in server mode, as it would in
a new Lambda container; the baseline is `import boto3` in the same kind of fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from moto.server import ThreadedMotoServer

from local.provision import provision
from local.runtime import free_ports
from local.template import ROOT

MEASURE_HANDLER = """
import importlib.util, json, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.perf_counter() - started
heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("lingua", "vaderSentiment", "numpy"))
print(json.dumps({{"seconds": elapsed, "heavy": heavy}}))
"""
MEASURE_BOTO3 = """
import json, time
started = time.perf_counter()
import boto3
print(json.dumps({"seconds": time.perf_counter() - started, "heavy": []}))
"""


@pytest.fixture(scope="module")
def moto_server():
    [port] = free_ports(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def _run(script: str, env: dict[str, str]) -> dict:
    completed = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_api_handler_import_does_not_load_the_language_detector(moto_server, monkeypatch, record_property):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    provisioned = provision(endpoint_url=moto_server)
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("PYTEST")},
        **provisioned.function_environment("InboundSmsApiFunction"),
        "AWS_ENDPOINT_URL": moto_server,
        "PYTHONPATH": str(ROOT / "layers" / "common"),
    }
    handler_script = MEASURE_HANDLER.format(path=str(ROOT / "functions" / "inbound_sms_api" / "app.py"))

    handler_runs = [_run(handler_script, env) for _ in range(3)]
    boto3_runs = [_run(MEASURE_BOTO3, env) for _ in range(3)]

    assert all(run["heavy"] == [] for run in handler_runs), handler_runs[0]["heavy"]
    handler = min(run["seconds"] for run in handler_runs)
    boto3 = min(run["seconds"] for run in boto3_runs)
    ratio = handler / boto3
    record_property("inbound_sms_api_import_seconds", round(handler, 3))
    record_property("boto3_import_seconds", round(boto3, 3))
    record_property("import_ratio", round(ratio, 2))
    print(f"inbound-sms API handler import {handler:.3f}s; import boto3 {boto3:.3f}s; ratio {ratio:.2f}")
    # The handler imports boto3 itself and initialises (settings, a secret read): it costs more
    # than boto3 alone, but not an order of magnitude more, which a heavy import would.
    assert ratio < 8
