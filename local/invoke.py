"""`make invoke FUNCTION=<LogicalId> EVENT=events/<file>.json`: run one function once with one event.

With a Docker engine this is `sam local invoke`. Without one, the function runs once under the
Lambda Runtime Interface Emulator that aws-sam-cli ships (the one `sam local invoke` runs in its
container), against a running `make serve` stack if there is one, else against a local stack
started for the call. The result goes to stdout as JSON; a function error exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from local.events import with_current_timestamp
from local.runtime import FunctionError, FunctionRuntime, FunctionSpec
from local.stack import DEFAULT_STATE_DIR, STATE_FILE, LocalStack

logger = logging.getLogger("local.invoke")

DOCKER_CHECK_SECONDS = 15
HEALTH_TIMEOUT_SECONDS = 2


class UnknownFunctionError(LookupError):
    pass


def docker_available() -> bool:
    """True when a Docker engine answers (not merely when the CLI is installed)."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        completed = subprocess.run(
            [docker, "info"], capture_output=True, timeout=DOCKER_CHECK_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return completed.returncode == 0


def sam_local_invoke(function_id: str, event_file: Path) -> int:
    sam = Path(sys.executable).with_name("sam")
    command = [str(sam) if sam.exists() else "sam", "local", "invoke", function_id, "-e", str(event_file)]
    return subprocess.run(command, check=False).returncode


def running_stack(state_file: Path = DEFAULT_STATE_DIR / STATE_FILE) -> dict[str, Any] | None:
    """The stack.json of a `make serve` that still answers, or None (a stale file is ignored)."""
    try:
        state: dict[str, Any] = json.loads(state_file.read_text())
        response = requests.get(f"{state['api']}/_local/health", timeout=HEALTH_TIMEOUT_SECONDS)
    except (OSError, ValueError, KeyError, requests.RequestException):
        return None
    return state if response.status_code == 200 else None


def function_spec_of(target: LocalStack | Mapping[str, Any], function_id: str) -> FunctionSpec:
    """How the stack runs the function (its environment points at that stack's moto and
    simulators); asked over HTTP when the stack lives in another process."""
    if isinstance(target, LocalStack):
        description = target.function_description(function_id)
    else:
        response = requests.get(f"{target['api']}/_local/functions/{function_id}", timeout=10)
        description = response.json() if response.status_code == 200 else None
    if description is None:
        raise UnknownFunctionError(f"template.yaml has no function {function_id}")
    return FunctionSpec.from_json(description)


def invoke_event(target: LocalStack | Mapping[str, Any], function_id: str, event: Any) -> Any:
    """Run the function once, in a fresh emulator (a cold start, as `sam local invoke` does),
    against the stack's AWS emulation and simulators. Raises FunctionError on a function error.
    A sample request's `timestamp` is stamped with the current time (see with_current_timestamp)."""
    with FunctionRuntime(function_spec_of(target, function_id)) as runtime:
        return runtime.invoke(with_current_timestamp(event))


def _invoke_locally(function_id: str, event: Any) -> Any:
    state = running_stack()
    if state is not None:
        logger.info("using the running local stack at %s", state["api"])
        return invoke_event(state, function_id, event)
    logger.info("no local stack is running; starting one for this call")
    # No pollers: this call should run exactly one function, not whatever it enqueues as well.
    with LocalStack(pollers=False) as stack:
        return invoke_event(stack, function_id, event)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.invoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("function_id", help="logical id of a function in template.yaml")
    parser.add_argument("event_file", type=Path, help="JSON event, e.g. events/inbound-sms-api.json")
    args = parser.parse_args(argv)
    # Logs go to stderr so stdout holds only the result.
    logging.basicConfig(level=logging.INFO, format="%(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    if docker_available():
        logger.info("a Docker engine answers: running sam local invoke")
        return sam_local_invoke(args.function_id, args.event_file)
    try:
        event = json.loads(args.event_file.read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.event_file}: {exc}", file=sys.stderr)
        return 2
    try:
        result = _invoke_locally(args.function_id, event)
    except UnknownFunctionError as exc:
        print(exc, file=sys.stderr)
        return 2
    except FunctionError as exc:
        print(json.dumps(exc.to_json(), indent=2), file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
