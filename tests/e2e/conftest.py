"""The local stack, started once per test session as `make serve` starts it (a subprocess), and
small HTTP helpers: e2e tests see the stack only through its URLs, like any client would."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from local.builders import SENDER, inbound_sms
from local.stack import STATE_FILE
from local.template import ROOT

STARTUP_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30
HTTP_TIMEOUT_SECONDS = 30

T = TypeVar("T")


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """stack.json of a `python -m local.stack` subprocess (keys: api, api_key, aws, cxone,
    ticketing, webhook_secret, pid, plus startup_seconds measured here)."""
    state_dir = tmp_path_factory.mktemp("local-stack")
    log_path = state_dir / "stack.log"
    command = [
        sys.executable,
        "-m",
        "local.stack",
        "--port",
        "0",
        "--state-dir",
        str(state_dir),
        "--retry-delay",
        "1",
    ]
    started = time.monotonic()
    with log_path.open("wb") as log:
        # Our own interpreter and module, no shell and no outside input.
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        state = _wait_for_state(state_dir / STATE_FILE, process, log_path)
        state["startup_seconds"] = round(time.monotonic() - started, 2)
        yield state
    finally:
        _stop(process)


def _wait_for_state(state_file: Path, process: subprocess.Popen[bytes], log_path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if state_file.exists():
            state: dict[str, Any] = json.loads(state_file.read_text())
            return state
        if process.poll() is not None:
            break
        time.sleep(0.1)
    tail = log_path.read_text(errors="replace")[-4000:]
    pytest.fail(f"local stack did not start (exit status {process.poll()}):\n{tail}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- helpers ---------------------------------------------------------------------------------


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def sms(message_id: str, body: str = "Hi, my invoice is wrong", sender: str = SENDER) -> dict[str, Any]:
    return inbound_sms(message_id, body, sender=sender)


def post_sms(stack: dict[str, Any], body: dict[str, Any], api_key: str | None = None) -> requests.Response:
    key = stack["api_key"] if api_key is None else api_key
    headers = {"x-api-key": key} if key else {}
    url = f"{stack['api']}/sms/inbound"
    return requests.post(url, json=body, headers=headers, timeout=HTTP_TIMEOUT_SECONDS)


def get_json(url: str) -> Any:
    response = requests.get(url, timeout=HTTP_TIMEOUT_SECONDS)
    response.raise_for_status()
    return response.json()


def queues(stack: dict[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = get_json(f"{stack['api']}/_local/queues")
    return report


def stored_messages(stack: dict[str, Any], channel: str = "sms-channel") -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = get_json(f"{stack['cxone']}/_sim/state")["messages"].get(channel, [])
    return messages


def add_cxone_fault(stack: dict[str, Any], **fault: Any) -> None:
    response = requests.post(f"{stack['cxone']}/_sim/faults", json=fault, timeout=HTTP_TIMEOUT_SECONDS)
    response.raise_for_status()


def clear_cxone_faults(stack: dict[str, Any]) -> None:
    requests.delete(f"{stack['cxone']}/_sim/faults", timeout=HTTP_TIMEOUT_SECONDS).raise_for_status()


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll until probe() returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
