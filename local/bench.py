"""`make bench`: what each API handler costs to cold-start, what each workflow costs per message.

- Cold import: each API handler imported in a fresh interpreter, initialising for real against
  moto in server mode, with tracing on as deployed; CPU time as a ratio to `import boto3` in the
  same kind of interpreter, in pairs, median of BENCH_RUNS. As deployed: from `make build`'s
  output, with and without the bytecode it ships; and in the dev venv, where a baseline commit's
  handlers can be measured beside today's.
- Per message: each workflow driven through its handlers on moto (in process), every AWS call
  counted by a botocore event hook on every client, with DynamoDB capacity units computed from
  the items written and read (moto's own figures are not DynamoDB's), plus the bytes logged.
- Per function: warm duration (the Lambda emulator's REPORT lines) and peak memory (the function
  process's VmHWM) on the local stack, under the same scenarios.
- Cost per million messages at the list prices in local/prices.json, with the arithmetic.

Writes .local/bench.json and prints a table. Not part of `make test`: it takes minutes.

    python -m local.bench [--runs 7] [--messages 25] [--baseline REF]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from local.template import ROOT, load_template

PRICES: dict[str, Any] = json.loads((ROOT / "local" / "prices.json").read_text())
REPORT = ROOT / ".local" / "bench.json"
BENCH_RUNS = 7
# What the moto runs' DeliveryWebhookSecret holds: the delivery reports are signed with it.
WEBHOOK_SECRET = "bench-delivery-webhook-secret"  # noqa: S105 - the bench's own, on moto
OUTBOUND_SENDER = "+14155550100"

# ---------------------------------------------------------------------------------- cold import

_IMPORT_HANDLER = """
import importlib.util, json, sys, time
started = time.process_time()
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({{"cpu_seconds": time.process_time() - started, "xray": "aws_xray_sdk" in sys.modules}}))
"""
_IMPORT_BOTO3 = """
import json, time
started = time.process_time()
import boto3
print(json.dumps({"cpu_seconds": time.process_time() - started, "xray": False}))
"""


def api_functions() -> list[tuple[str, str]]:
    """(logical id, code folder) of every function behind an API route."""
    template = load_template()
    ids = sorted({route.function_id for route in template.api_routes()})
    return [(fid, Path(str(template.function_properties(fid)["CodeUri"])).name) for fid in ids]


def _run_python(script: str, env: dict[str, str], flags: tuple[str, ...] = ()) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, *flags, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


@contextlib.contextmanager
def _provisioned_on_moto() -> Iterator[tuple[Any, str]]:
    """A moto server of its own with every resource of template.yaml: (Provisioned, endpoint)."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from local.provision import provision
    from local.runtime import free_ports

    [port] = free_ports(1)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        session = boto3.Session(
            aws_access_key_id="bench",
            aws_secret_access_key="bench",  # noqa: S106 - moto's, not a secret
            region_name="us-east-1",
        )
        yield provision(session=session, endpoint_url=endpoint), endpoint
    finally:
        server.stop()


def _same_resources(provisioned: Any, root: Path) -> Any:
    """Another checkout's template read against the resources already made for this one (moto
    keeps one account per process, and the stacks' resources have the same names)."""
    from local.provision import STACK_NAME, Provisioned
    from local.template import Resolver

    template = load_template(root / "template.yaml")
    resolver = provisioned.resolver
    return Provisioned(template, Resolver(template, resolver.refs, resolver.attributes, STACK_NAME))


@dataclass
class HandlerTree:
    """One checkout's API handlers, to import: this one, or a baseline commit's."""

    root: Path
    provisioned: Any
    endpoint: str

    def script_and_env(
        self, function_id: str, code_dir: str, base: dict[str, str]
    ) -> tuple[str, dict[str, str]] | None:
        app = self.root / "functions" / code_dir / "app.py"
        if not app.is_file() or function_id not in self.provisioned.template.function_ids():
            return None
        env = (
            base
            | self.provisioned.function_environment(function_id)
            | {
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1",
                "PYTHONPATH": str(self.root / "layers" / "common"),
                # As in Lambda, so Powertools' Tracer is on (it turns itself off elsewhere).
                "AWS_LAMBDA_FUNCTION_NAME": function_id,
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            }
        )
        return _IMPORT_HANDLER.format(path=str(app)), env


@dataclass
class PairedRuns:
    """A script's cold runs, each beside an `import boto3` run made under the same load."""

    script_seconds: list[float] = field(default_factory=list)
    boto3_seconds: list[float] = field(default_factory=list)
    xray: bool = False

    def add(self, measured: dict[str, Any], boto3_seconds: float) -> None:
        self.script_seconds.append(measured["cpu_seconds"])
        self.boto3_seconds.append(boto3_seconds)
        self.xray = self.xray or measured["xray"]

    def summary(self) -> dict[str, Any]:
        """Medians: of each run's ratio, and of the two CPU times."""
        ratios = [run / boto3 for run, boto3 in zip(self.script_seconds, self.boto3_seconds, strict=True)]
        return {
            "ratio": round(statistics.median(ratios), 2),
            "handler_cpu_ms": round(statistics.median(self.script_seconds) * 1000),
            "boto3_cpu_ms": round(statistics.median(self.boto3_seconds) * 1000),
            "xray_sdk_loaded": self.xray,
            "runs": len(self.script_seconds),
        }


def _measuring_environment() -> dict[str, str]:
    return {
        key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "POWERTOOLS_TRACE"))
    }


def import_ratios(
    moto: tuple[Any, str], runs: int = BENCH_RUNS, baseline: Path | None = None
) -> dict[str, dict[str, Any]]:
    """Each API handler's cold import in the dev venv, as a ratio to `import boto3`, initialising
    against `moto` (provisioned, endpoint). With `baseline` (another checkout), its handlers are
    measured in the same runs, each beside the same boto3 import, so before and after share the
    machine's load; they appear as `baseline` in each entry."""
    base = _measuring_environment()
    provisioned, endpoint = moto
    trees = {"current": HandlerTree(ROOT, provisioned, endpoint)}
    if baseline is not None:
        trees["baseline"] = HandlerTree(baseline, _same_resources(provisioned, baseline), endpoint)
    results: dict[str, dict[str, Any]] = {}
    for function_id, code_dir in api_functions():
        runnable = {
            name: found
            for name, tree in trees.items()
            if (found := tree.script_and_env(function_id, code_dir, base)) is not None
        }
        samples = {name: PairedRuns() for name in runnable}
        for _ in range(runs):  # the current and the baseline handler beside the same boto3 run
            boto3_seconds = _run_python(_IMPORT_BOTO3, runnable["current"][1])["cpu_seconds"]
            for name, (script, env) in runnable.items():
                samples[name].add(_run_python(script, env), boto3_seconds)
        results[function_id] = samples["current"].summary()
        if "baseline" in samples:
            results[function_id]["baseline"] = samples["baseline"].summary()
    return results


# ------------------------------------------------------------------------- cold import, as deployed

BUILD_DIR = ROOT / ".aws-sam" / "build"
# Started without site-packages (-S: nothing of the dev venv is importable) and without writing
# bytecode (-B: Lambda's code and layers are read-only); sys.path as Lambda's: the code, then layers.
_DEPLOYED_PATHS = "import sys; sys.path[:0] = {paths!r}\n"


# The least an API handler's cold start can cost: what each one does before any routing or
# workflow code (its three clients, the PII key read, Powertools' logger and metrics, one pydantic
# model), measured the same way, as deployed.
_IMPORT_FLOOR = """
import json, os, time
started = time.process_time()
import boto3
dynamodb, sqs = boto3.client("dynamodb"), boto3.client("sqs")
boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["PII_HASH_KEY_SECRET_ARN"])
from aws_lambda_powertools import Logger, Metrics
Logger(), Metrics()
from pydantic import BaseModel
class Request(BaseModel):
    id: str
    digits: str
    timeout_ms: int = 2000
print(json.dumps({"cpu_seconds": time.process_time() - started, "xray": False}))
"""
FLOOR_FUNCTION = "DtmfApiFunction"


def _deployed_python(script: str, paths: list[str], env: dict[str, str]) -> dict[str, Any]:
    return _run_python(
        _DEPLOYED_PATHS.format(paths=paths) + script,
        {key: value for key, value in env.items() if key != "PYTHONPATH"},
        flags=("-S", "-B"),
    )


def _without_bytecode(build_dir: Path, into: Path) -> Path:
    """A copy of the build as it was before it shipped bytecode (every import compiled at start)."""
    import shutil

    shutil.copytree(build_dir, into, ignore=shutil.ignore_patterns("__pycache__"))
    return into


def deployed_imports(
    moto: tuple[Any, str], runs: int = BENCH_RUNS, build_dir: Path = BUILD_DIR
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Each API handler imported from `make build`'s output, laid out as Lambda lays it out, as a
    ratio to `import boto3` from the same layer; and the same from a copy of the build without the
    bytecode it ships, in the same runs, as `without_bytecode`. With them, the floor: what any API
    handler must do before its own code (_IMPORT_FLOOR), measured the same way."""
    import tempfile

    from local.bytecode import built_artifacts

    if not (build_dir / "template.yaml").is_file():
        raise SystemExit(f"no build in {build_dir}: run `make build` first (make bench does)")
    base = _measuring_environment()
    built_template = load_template(build_dir / "template.yaml")
    artifacts, layers_of = built_artifacts(built_template, build_dir)
    directories = {artifact.logical_id: artifact.directory for artifact in artifacts}
    provisioned, endpoint = moto

    def paths_of(root: Path, function_id: str) -> list[str]:
        """sys.path's head in Lambda: the function's code, then its layers."""
        parts = (function_id, *layers_of[function_id])
        return [str(root / directories[part].relative_to(build_dir)) for part in parts]

    with tempfile.TemporaryDirectory() as scratch:
        builds = {"shipped": build_dir, "without_bytecode": _without_bytecode(build_dir, Path(scratch) / "b")}
        tree = HandlerTree(ROOT, provisioned, endpoint)
        results: dict[str, dict[str, Any]] = {}
        envs: dict[str, dict[str, str]] = {}
        for function_id, code_dir in api_functions():
            found = tree.script_and_env(function_id, code_dir, base)
            if found is None:
                continue
            env = envs[function_id] = found[1]
            samples = {name: PairedRuns() for name in builds}
            for _ in range(runs):
                for name, root in builds.items():
                    paths = paths_of(root, function_id)
                    boto3_seconds = _deployed_python(_IMPORT_BOTO3, paths, env)["cpu_seconds"]
                    app = str(Path(paths[0]) / "app.py")
                    samples[name].add(
                        _deployed_python(_IMPORT_HANDLER.format(path=app), paths, env), boto3_seconds
                    )
            results[function_id] = samples["shipped"].summary()
            results[function_id]["without_bytecode"] = samples["without_bytecode"].summary()
        floor = PairedRuns()
        paths, env = paths_of(build_dir, FLOOR_FUNCTION), envs[FLOOR_FUNCTION]
        for _ in range(runs):
            boto3_seconds = _deployed_python(_IMPORT_BOTO3, paths, env)["cpu_seconds"]
            floor.add(_deployed_python(_IMPORT_FLOOR, paths, env), boto3_seconds)
        return results, floor.summary()


# ------------------------------------------------------------------------------- call counting


def item_size(item: dict[str, Any]) -> int:
    """A DynamoDB item's size in bytes, by DynamoDB's rules (names plus values)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    (kind, data), *_ = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        return (len(str(data).strip("-").replace(".", "").lstrip("0")) + 1) // 2 + 1
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: element}) for element in data)
    if kind == "L":
        return 3 + sum(_value_size(element) + 1 for element in data)
    if kind == "M":
        return 3 + sum(len(name.encode()) + _value_size(element) + 1 for name, element in data.items())
    return 0


def capacity_units(operation: str, params: dict[str, Any]) -> tuple[float, float]:
    """(write units, read units) a DynamoDB request consumes: 1 KB per write unit per item, 4 KB
    per read unit (half for an eventually consistent read). Items read are taken as under 4 KB;
    an update counts the key and the values it sets (our updates are small)."""
    if operation == "PutItem":
        return math.ceil(item_size(params["Item"]) / 1024), 0.0
    if operation == "UpdateItem":
        written = dict(params["Key"]) | dict(params.get("ExpressionAttributeValues", {}))
        return max(1, math.ceil(item_size(written) / 1024)), 0.0
    if operation == "DeleteItem":
        return 1.0, 0.0
    if operation == "BatchWriteItem":
        units = 0
        for requests in params["RequestItems"].values():
            for request in requests:
                put = request.get("PutRequest")
                units += math.ceil(item_size(put["Item"]) / 1024) if put else 1
        return float(units), 0.0
    if operation in ("GetItem", "Query", "Scan"):
        return 0.0, 1.0 if params.get("ConsistentRead") else 0.5
    if operation == "BatchGetItem":  # each key is read as a GetItem would be
        return 0.0, float(
            sum(
                len(request["Keys"]) * (1.0 if request.get("ConsistentRead") else 0.5)
                for request in params["RequestItems"].values()
            )
        )
    return 0.0, 0.0


@dataclass
class Counts:
    calls: Counter[str] = field(default_factory=Counter)  # "service.Operation" -> calls
    write_units: float = 0.0
    read_units: float = 0.0
    log_bytes: int = 0

    def per(self, messages: int) -> dict[str, Any]:
        return {
            "aws_calls": {name: round(count / messages, 3) for name, count in sorted(self.calls.items())},
            "aws_calls_total": round(sum(self.calls.values()) / messages, 3),
            "dynamodb_write_units": round(self.write_units / messages, 3),
            "dynamodb_read_units": round(self.read_units / messages, 3),
            "sqs_requests": round(
                sum(c for n, c in self.calls.items() if n.startswith("sqs.")) / messages, 3
            ),
            "log_bytes": round(self.log_bytes / messages),
        }


class CallCounter:
    """Counts every AWS call made by any botocore client created while installed (a
    `before-parameter-build` event hook, which sees the call's own parameters, registered on each
    new client), DynamoDB capacity units included."""

    def __init__(self) -> None:
        self.counts = Counts()

    def reset(self) -> Counts:
        counts, self.counts = self.counts, Counts()
        return counts

    # Made by Lambda's event source mapping (the local poller plays it), not by our code; the cost
    # lines price them per batch.
    EVENT_SOURCE_CALLS = frozenset({"sqs.ReceiveMessage", "sqs.DeleteMessage", "sqs.ChangeMessageVisibility"})

    def before_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        name = f"{service}.{model.name}"
        if name in self.EVENT_SOURCE_CALLS:
            return
        self.counts.calls[name] += 1
        if service == "dynamodb":
            written, read = capacity_units(model.name, params)
            self.counts.write_units += written
            self.counts.read_units += read

    @contextlib.contextmanager
    def installed(self) -> Iterator[CallCounter]:
        import botocore.session

        original = botocore.session.Session.create_client
        counter = self

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            client.meta.events.register("before-parameter-build.*.*", counter.before_call)
            return client

        setattr(botocore.session.Session, "create_client", create_client)  # noqa: B010 - patched for the run
        try:
            yield self
        finally:
            setattr(botocore.session.Session, "create_client", original)  # noqa: B010


@contextlib.contextmanager
def captured_output(counter: CallCounter) -> Iterator[None]:
    """Logs and EMF metrics go to stdout in Lambda, and to CloudWatch Logs from there: count the bytes."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    counter.counts.log_bytes += len(buffer.getvalue().encode())


# ----------------------------------------------------------------------------- per message


@dataclass
class Stage:
    """One function's part of a workflow, per message."""

    function_id: str
    invocations_per_message: float
    counts: dict[str, Any]


@dataclass
class WorkflowMeasure:
    workflow: str
    unit: str  # what "a message" is for this workflow
    messages: int
    stages: list[Stage]

    def total(self, key: str) -> float:
        return round(sum(float(stage.counts[key]) for stage in self.stages), 3)


class Scenario:
    """Drives one workflow's handlers in process; subclasses send and consume N messages."""

    workflow = ""
    unit = "message"

    def __init__(self, provisioned: Any, cxone: Any, ticketing: Any, counter: CallCounter) -> None:
        self.provisioned = provisioned
        self.cxone = cxone
        self.ticketing = ticketing
        self.counter = counter

    def load(self, function_id: str, code_dir: str, **overrides: str) -> Any:
        from local.handlers import load_handler_module
        from local.runtime import cxone_environments_for

        environment = self.provisioned.function_environment(function_id) | overrides
        if "CXONE_ENVIRONMENTS" in environment:
            environment["CXONE_ENVIRONMENTS"] = cxone_environments_for(
                environment["CXONE_ENVIRONMENTS"], self.cxone.url
            )
        if "TICKETING_BASE_URL" in environment:
            environment["TICKETING_BASE_URL"] = self.ticketing.url
        os.environ.update(environment)
        with captured_output(self.counter):
            return load_handler_module(code_dir)

    def stage(self, function_id: str, invocations: int, messages: int, run: Callable[[], Any]) -> Stage:
        self.counter.reset()
        with captured_output(self.counter):
            run()
        return Stage(function_id, round(invocations / messages, 3), self.counter.reset().per(messages))

    def measure(self, messages: int) -> WorkflowMeasure:
        raise NotImplementedError

    def batch_size(self, function_id: str) -> int:
        """The records Lambda hands the function per invocation (its event source's BatchSize)."""
        return next(
            s.batch_size for s in self.provisioned.template.queue_sources() if s.function_id == function_id
        )

    def poller(self, queue_id: str, function_id: str, module: Any, timeout: int) -> Any:
        from local.events import LocalLambdaContext
        from local.poller import QueuePoller

        source = next(s for s in self.provisioned.template.queue_sources() if s.function_id == function_id)
        return QueuePoller(
            _client("sqs"),
            self.provisioned.queues[queue_id],
            self.provisioned.resolver.get_att(queue_id, "Arn"),
            source,
            invoke=lambda event: module.lambda_handler(event, LocalLambdaContext(function_id, timeout)),
            batching_window_seconds=0,
        )


def _client(service: str) -> Any:
    import boto3

    make: Any = boto3.client
    return make(service)


def _api_event(path: str, body: dict[str, Any]) -> dict[str, Any]:
    from local.events import api_gateway_event

    return api_gateway_event(
        "POST", path, json.dumps(body), {"content-type": "application/json"}, binary=True
    )


def daytime_recipients(count: int, now: datetime) -> list[str]:
    """`count` numbers in one time zone where it is well inside the 08:00-21:00 send window now (an
    hour's margin either side, as the demo picks them), so a campaign to them is queued, not held:
    the demo's candidates round the world, the first open one with its last three digits varied."""
    import phonenumbers
    from phonenumbers import timezone

    from local.demos.outbound_sms import CANDIDATES

    for candidate in CANDIDATES:
        zones = timezone.time_zones_for_number(phonenumbers.parse(candidate))
        if all(9 <= now.astimezone(ZoneInfo(zone)).hour < 20 for zone in zones):
            return [f"{candidate[:-3]}{n:03d}" for n in range(count)]
    raise RuntimeError(f"no candidate number is inside its send window at {now.isoformat()}")


def opt_out_numbers(count: int, first: int = 0) -> list[str]:
    return [f"+1415555{3000 + n:04d}" for n in range(first, first + count)]


def campaign(phone: str) -> dict[str, Any]:
    """POST /sms/outbound's body for one recipient."""
    return {"to": [phone], "from": OUTBOUND_SENDER, "text": "Your order has shipped.", "campaignId": "bench"}


def queued_message_id(answer: dict[str, Any]) -> str:
    """The one message's id in a send's answer; anything but queued (held, refused) is not what
    the scenario means to measure."""
    messages = answer.get("messages") or []
    if [message.get("status") for message in messages] != ["queued"]:
        raise RuntimeError(f"the outbound message was not queued: {answer}")
    return str(messages[0]["messageId"])


def delivered_report(secret: str, message_id: str, phone: str) -> tuple[bytes, dict[str, str]]:
    """(raw body, headers) of a "delivered" report as the SMS channel posts it, signed now."""
    from local.demos.outbound_sms import sign

    body = json.dumps(
        {
            "messageId": message_id,
            "status": "delivered",
            "to": phone,
            "timestamp": datetime.now(UTC).isoformat(),
        }
    ).encode()
    return body, {"content-type": "application/json", "X-Signature": sign(secret, body, int(time.time()))}


class InboundSmsScenario(Scenario):
    workflow = "inbound-sms"
    unit = "routed inbound SMS"

    def measure(self, messages: int) -> WorkflowMeasure:
        from local.builders import inbound_sms
        from local.events import LocalLambdaContext

        api = self.load("InboundSmsApiFunction", "inbound_sms_api")
        consumer = self.load("InboundSmsConsumerFunction", "inbound_sms_consumer")
        bodies = [
            inbound_sms(f"bench-{n}", f"Question {n} about my invoice", sender=f"+1415555{n:04d}")
            for n in range(messages)
        ]

        def post() -> None:
            for body in bodies:
                api.lambda_handler(_api_event("/sms/inbound", body), LocalLambdaContext("api", 10))

        poller = self.poller("InboundSmsQueue", "InboundSmsConsumerFunction", consumer, 60)
        # One message first, uncounted: a warm function has its token, its discovered endpoints
        # and its settings already, and that is the state nearly every message meets.
        with captured_output(self.counter):
            api.lambda_handler(
                _api_event("/sms/inbound", inbound_sms("bench-warm", "warm up", sender="+16505550199")),
                LocalLambdaContext("api", 10),
            )
            poller.deliver_once()
        batches: list[int] = []
        return WorkflowMeasure(
            self.workflow,
            self.unit,
            messages,
            [
                self.stage("InboundSmsApiFunction", messages, messages, post),
                self.stage(
                    "InboundSmsConsumerFunction",
                    1,
                    messages,
                    lambda: batches.append(poller.deliver_once().received),
                ),
            ],
        )


class DtmfScenario(Scenario):
    workflow = "dtmf"
    unit = "DTMF request"

    def measure(self, messages: int) -> WorkflowMeasure:
        from local.builders import dtmf_request
        from local.events import LocalLambdaContext

        self.cxone.add_agent_sessions([f"bench-session-{n}" for n in range(messages)])
        api = self.load("DtmfApiFunction", "dtmf_api")
        consumer = self.load("DtmfConsumerFunction", "dtmf_consumer")

        def post() -> None:
            for n in range(messages):
                api.lambda_handler(
                    _api_event("/dtmf", dtmf_request(f"bench-session-{n}", "12#")),
                    LocalLambdaContext("api", 10),
                )

        poller = self.poller("DtmfQueue", "DtmfConsumerFunction", consumer, 30)
        self.cxone.add_agent_sessions(["bench-session-warm"])
        with captured_output(self.counter):
            api.lambda_handler(
                _api_event("/dtmf", dtmf_request("bench-session-warm", "1")), LocalLambdaContext("api", 10)
            )
            poller.deliver_once()
        rounds = math.ceil(messages / self.batch_size("DtmfConsumerFunction"))
        return WorkflowMeasure(
            self.workflow,
            self.unit,
            messages,
            [
                self.stage("DtmfApiFunction", messages, messages, post),
                self.stage(
                    "DtmfConsumerFunction",
                    rounds,
                    messages,
                    lambda: [poller.deliver_once() for _ in range(rounds)],
                ),
            ],
        )


class SocialInboxScenario(Scenario):
    workflow = "social-inbox"
    unit = "conversation pulled"

    def measure(self, messages: int) -> WorkflowMeasure:
        from datetime import UTC, datetime, timedelta

        from local.builders import social_contact
        from local.events import LocalLambdaContext
        from local.front import ScheduleTrigger, schedule_event

        now = datetime.now(UTC)
        self.cxone.load_contacts(
            [
                social_contact(
                    f"bench-{n}",
                    f"My order {n} has not arrived, please help",
                    updated_at=now - timedelta(hours=2, minutes=n),
                )
                for n in range(messages)
            ]
        )
        puller = self.load("InboxPullFunction", "inbox_pull")
        event = schedule_event(ScheduleTrigger("InboxPullFunction", "InboxPullSchedule", "ScheduleV2", None))
        return WorkflowMeasure(
            self.workflow,
            self.unit,
            messages,
            [
                self.stage(
                    "InboxPullFunction",
                    1,
                    messages,
                    lambda: puller.lambda_handler(event, LocalLambdaContext("inbox", 240)),
                )
            ],
        )


class OutboundSmsScenario(Scenario):
    """A campaign message to one consented recipient, sent through CXone, then the channel's
    "delivered" report for it, passed on to CXone. The held-message release runs on a schedule and
    only for held messages: not part of a message's cost."""

    workflow = "outbound-sms"
    unit = "message"

    def measure(self, messages: int) -> WorkflowMeasure:
        from local.events import LocalLambdaContext, api_gateway_event

        consent = self.load("ConsentApiFunction", "consent_api")
        api = self.load("OutboundSmsApiFunction", "outbound_sms_api")
        consumer = self.load("OutboundSmsConsumerFunction", "outbound_sms_consumer")
        webhook = self.load("DeliveryWebhookFunction", "delivery_webhook")
        status_consumer = self.load("DeliveryStatusConsumerFunction", "delivery_status_consumer")
        poller = self.poller("OutboundSmsQueue", "OutboundSmsConsumerFunction", consumer, 60)
        status_poller = self.poller(
            "DeliveryStatusQueue", "DeliveryStatusConsumerFunction", status_consumer, 60
        )
        warm, *recipients = daytime_recipients(messages + 1, datetime.now(UTC))
        sent: list[tuple[str, str]] = []  # (message id, recipient)

        def send(phone: str) -> dict[str, Any]:
            response: dict[str, Any] = api.lambda_handler(
                _api_event("/sms/outbound", campaign(phone)), LocalLambdaContext("api", 10)
            )
            sent.append((queued_message_id(json.loads(response["body"])), phone))
            return response

        def report(message_id: str, phone: str) -> dict[str, Any]:
            body, headers = delivered_report(WEBHOOK_SECRET, message_id, phone)
            return webhook.lambda_handler(
                api_gateway_event("POST", "/sms/status", body, headers, binary=True),
                LocalLambdaContext("webhook", 10),
            )

        # Every recipient opts in first (consent is not this workflow's cost); then one message
        # through every stage, uncounted, so each function is warm as nearly every message finds it.
        with captured_output(self.counter):
            for phone in [warm, *recipients]:
                body = {"phone": phone, "source": "web", "evidence": "bench sign-up form"}
                consent.lambda_handler(_api_event("/opt-in", body), LocalLambdaContext("consent", 10))
            send(warm)
            poller.deliver_once()
            report(*sent.pop())
            status_poller.deliver_once()
        rounds = math.ceil(messages / self.batch_size("OutboundSmsConsumerFunction"))
        status_rounds = math.ceil(messages / self.batch_size("DeliveryStatusConsumerFunction"))
        return WorkflowMeasure(
            self.workflow,
            self.unit,
            messages,
            [
                self.stage(
                    "OutboundSmsApiFunction", messages, messages, lambda: [send(p) for p in recipients]
                ),
                self.stage(
                    "OutboundSmsConsumerFunction",
                    rounds,
                    messages,
                    lambda: [poller.deliver_once() for _ in range(rounds)],
                ),
                self.stage("DeliveryWebhookFunction", messages, messages, lambda: [report(*m) for m in sent]),
                self.stage(
                    "DeliveryStatusConsumerFunction",
                    status_rounds,
                    messages,
                    lambda: [status_poller.deliver_once() for _ in range(status_rounds)],
                ),
            ],
        )


class ConsentScenario(Scenario):
    """An opt-out: recorded and queued by the API, then put on the DNC group of every CXone
    environment (two here, as the template configures them: primary and emea)."""

    workflow = "consent"
    unit = "opt-out"

    def measure(self, messages: int) -> WorkflowMeasure:
        from local.events import LocalLambdaContext

        api = self.load("ConsentApiFunction", "consent_api")
        consumer = self.load("OptOutConsumerFunction", "opt_out_consumer")
        warm, *numbers = opt_out_numbers(messages + 1)

        def opt_out(phone: str) -> dict[str, Any]:
            return api.lambda_handler(
                _api_event("/opt-out", {"phone": phone, "source": "web"}), LocalLambdaContext("api", 10)
            )

        poller = self.poller("OptOutQueue", "OptOutConsumerFunction", consumer, 60)
        with captured_output(self.counter):
            opt_out(warm)
            poller.deliver_once()
        rounds = math.ceil(messages / self.batch_size("OptOutConsumerFunction"))
        return WorkflowMeasure(
            self.workflow,
            self.unit,
            messages,
            [
                self.stage("ConsentApiFunction", messages, messages, lambda: [opt_out(n) for n in numbers]),
                self.stage(
                    "OptOutConsumerFunction",
                    rounds,
                    messages,
                    lambda: [poller.deliver_once() for _ in range(rounds)],
                ),
            ],
        )


SCENARIOS: list[type[Scenario]] = [
    InboundSmsScenario,
    DtmfScenario,
    SocialInboxScenario,
    OutboundSmsScenario,
    ConsentScenario,
]


def per_message(messages: int, scenarios: list[type[Scenario]] | None = None) -> dict[str, WorkflowMeasure]:
    """Each workflow on its own moto and simulators, every client counted."""
    from moto import mock_aws

    from local.provision import provision
    from local.simulators import CxoneSimulator, TicketingSimulator
    from local.stack import LOCAL_CXONE_CREDENTIALS, LOCAL_EMEA_CREDENTIALS
    from local.template import LOCAL_EMEA_SECRET

    saved = dict(os.environ)
    results: dict[str, WorkflowMeasure] = {}
    try:
        os.environ.update(
            {
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "POWERTOOLS_TRACE_DISABLED": "1",
            }
        )
        os.environ.pop("AWS_ENDPOINT_URL", None)
        for scenario_type in scenarios or SCENARIOS:
            counter = CallCounter()
            ticketing_key = "bench-ticketing-key"
            with (
                mock_aws(),
                counter.installed(),
                CxoneSimulator(credentials=[LOCAL_CXONE_CREDENTIALS, LOCAL_EMEA_CREDENTIALS]) as cxone,
                TicketingSimulator(api_key=ticketing_key) as ticketing,
            ):
                provisioned = provision(
                    secret_values={
                        "CxoneCredentialsSecret": json.dumps(LOCAL_CXONE_CREDENTIALS),
                        "TicketingApiKeySecret": json.dumps({"api_key": ticketing_key}),
                        "DeliveryWebhookSecret": json.dumps({"current": WEBHOOK_SECRET, "previous": ""}),
                    },
                    # The template's second CXone environment (emea) keeps its credentials apart.
                    extra_secrets={LOCAL_EMEA_SECRET: json.dumps(LOCAL_EMEA_CREDENTIALS)},
                )
                scenario = scenario_type(provisioned, cxone, ticketing, counter)
                counter.reset()
                results[scenario.workflow] = scenario.measure(messages)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return results


# ------------------------------------------------------------------------------ per function


def function_profiles(messages: int) -> dict[str, dict[str, Any]]:
    """Warm duration and peak memory of every function, on the local stack (one environment
    each, so one process holds each function's peak), under the same scenarios over HTTP.

    A first round warms every function (init, token, discovery); the second is measured, and
    its total duration divided by the messages it carried is what a message costs in compute."""
    from datetime import timedelta

    import requests

    from local.builders import dtmf_request, inbound_sms, social_contact
    from local.stack import LocalStack

    warm = 3
    with LocalStack(port=0, retry_delay_seconds=1, environments=1) as stack:
        api = requests.Session()
        api.headers.update({"x-api-key": stack.api_key})
        schedules = [s.function_id for s in stack.template.schedule_sources()]
        # Outbound recipients opt in before either round: consent is not the outbound workflow's
        # cost, and the consent API's measured invocations are then the opt-outs alone.
        recipients = daytime_recipients(warm + messages, datetime.now(UTC))
        for phone in recipients:
            body = {"phone": phone, "source": "web", "evidence": "bench sign-up form"}
            api.post(f"{stack.front_url}/opt-in", json=body, timeout=30).raise_for_status()

        def round_of(label: str, count: int, first: int) -> None:
            now = datetime.now(UTC)
            for n in range(count):
                api.post(
                    f"{stack.front_url}/sms/inbound",
                    json=inbound_sms(f"{label}-{n}", f"Question {n} about my invoice"),
                    timeout=30,
                )
            sessions = [f"{label}-session-{n}" for n in range(count)]
            stack.cxone.add_agent_sessions(sessions)
            for session in sessions:
                api.post(f"{stack.front_url}/dtmf", json=dtmf_request(session, "12#"), timeout=30)
            stack.cxone.load_contacts(
                [
                    social_contact(
                        f"{label}-{n}", f"My order {n} has not arrived", updated_at=now - timedelta(hours=2)
                    )
                    for n in range(count)
                ]
            )
            sent = []
            for phone in recipients[first : first + count]:
                answer = api.post(f"{stack.front_url}/sms/outbound", json=campaign(phone), timeout=30)
                sent.append((queued_message_id(answer.json()), phone))
            for phone in opt_out_numbers(count, first):
                api.post(f"{stack.front_url}/opt-out", json={"phone": phone, "source": "web"}, timeout=30)
            stack.wait_until_drained(timeout=120, interval=0.1)
            # Once the messages are sent, the SMS channel reports each delivered (signed, no API key).
            for message_id, phone in sent:
                body, headers = delivered_report(stack.webhook_secret, message_id, phone)
                answer = requests.post(
                    f"{stack.front_url}/sms/status", data=body, headers=headers, timeout=30
                )
                answer.raise_for_status()  # a report refused (401, 422) would leave its consumer idle
            stack.wait_until_drained(timeout=120, interval=0.1)
            for function_id in schedules:
                api.post(f"{stack.front_url}/_local/schedules/{function_id}", timeout=300)

        round_of("warm", warm, 0)
        before = {function_id: len(pool.durations_ms()) for function_id, pool in stack.runtimes.items()}
        round_of("prof", messages, warm)
        profiles: dict[str, dict[str, Any]] = {}
        for function_id, pool in stack.runtimes.items():
            durations = pool.durations_ms()[before[function_id] :]
            props = stack.template.function_properties(function_id)
            profiles[function_id] = {
                "memory_size_mb": int(props.get("MemorySize", 128)),
                "warm_invocations": len(durations),
                "warm_ms_median": round(statistics.median(durations), 1) if durations else None,
                "warm_ms_p95": round(_percentile(durations, 95), 1) if durations else None,
                "ms_per_message": round(sum(durations) / messages, 2),
                "peak_memory_mb": round(pool.peak_memory_mb() or 0, 1),
            }
        return profiles


def _percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(percent / 100 * len(ordered)) - 1)]


# ----------------------------------------------------------------------------------- cost


def cost_lines(
    measure: WorkflowMeasure, profiles: dict[str, dict[str, Any]], api_requests: float
) -> tuple[list[tuple[str, str, float]], float]:
    """(what, arithmetic, USD per million) lines and their total, for one workflow."""
    million = 1_000_000
    lines: list[tuple[str, str, float]] = []
    if api_requests:
        price = PRICES["api_gateway_rest_per_million_requests"]
        lines.append(("API Gateway REST", f"{api_requests} request x ${price}/M", api_requests * price))
    for stage in measure.stages:
        profile = profiles.get(stage.function_id, {})
        invocations = stage.invocations_per_message
        requests_cost = invocations * PRICES["lambda_per_million_requests"]
        # Compute is priced from the measured duration per message, whatever the batch sizes were.
        ms = profile.get("ms_per_message") or 0.0
        memory_gb = profile.get("memory_size_mb", 128) / 1024
        gb_seconds = ms / 1000 * memory_gb
        compute = gb_seconds * PRICES["lambda_per_gb_second"] * million
        lines.append(
            (
                f"Lambda {stage.function_id.removesuffix('Function')}",
                f"{invocations} inv x ${PRICES['lambda_per_million_requests']}/M"
                f" + {ms} ms x {memory_gb:g} GB x ${PRICES['lambda_per_gb_second']}/GB-s",
                requests_cost + compute,
            )
        )
        traces = invocations * PRICES["xray_default_sampling"]
        lines.append(
            (
                f"X-Ray {stage.function_id.removesuffix('Function')}",
                f"{invocations} traces x {PRICES['xray_default_sampling']} sampled"
                f" x ${PRICES['xray_per_million_traces']}/M",
                traces * PRICES["xray_per_million_traces"],
            )
        )
    sqs = measure.total("sqs_requests")
    queue_fed = {source.function_id for source in load_template().queue_sources()}
    # Lambda's event source mapping receives and deletes: about two requests per batch (not counted above).
    mapping = round(
        sum(2 * s.invocations_per_message for s in measure.stages if s.function_id in queue_fed), 3
    )
    if sqs or mapping:
        lines.append(
            (
                "SQS",
                f"({sqs} sent + {mapping} received/deleted) x ${PRICES['sqs_per_million_requests']}/M",
                (sqs + mapping) * PRICES["sqs_per_million_requests"],
            )
        )
    writes, reads = measure.total("dynamodb_write_units"), measure.total("dynamodb_read_units")
    lines.append(
        (
            "DynamoDB",
            f"{writes} WRU x ${PRICES['dynamodb_per_million_write_units']}/M"
            f" + {reads} RRU x ${PRICES['dynamodb_per_million_read_units']}/M",
            writes * PRICES["dynamodb_per_million_write_units"]
            + reads * PRICES["dynamodb_per_million_read_units"],
        )
    )
    log_bytes = measure.total("log_bytes")
    lines.append(
        (
            "CloudWatch Logs",
            f"{log_bytes:.0f} bytes x ${PRICES['cloudwatch_logs_per_gb_ingested']}/GB",
            log_bytes / 1024**3 * PRICES["cloudwatch_logs_per_gb_ingested"] * million,
        )
    )
    return lines, sum(cost for _, _, cost in lines)


# ----------------------------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs", type=int, default=BENCH_RUNS, help="paired cold-import runs per handler (median)"
    )
    parser.add_argument("--messages", type=int, default=25, help="messages per workflow scenario")
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also import the API handlers of this commit (a temporary git worktree) in the same runs",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()

    # One moto server for both (moto keeps one account per process: the resources exist once).
    with _provisioned_on_moto() as moto, _checkout(args.baseline) as baseline:
        print(f"cold imports as deployed ({args.runs} paired runs per API handler)...", flush=True)
        imports, floor = deployed_imports(moto, args.runs)
        print(f"cold imports in the dev venv ({args.runs} paired runs per API handler)...", flush=True)
        dev_imports = import_ratios(moto, args.runs, baseline)
    print("calls per message, per workflow...", flush=True)
    measures = per_message(args.messages)
    print("durations and peak memory on the local stack...", flush=True)
    profiles = function_profiles(args.messages)

    api_functions_of = {route.function_id for route in load_template().api_routes()}
    costs: dict[str, Any] = {}
    for workflow, measure in measures.items():
        # One API Gateway request per API function invocation: a delivered outbound message is two
        # (the send and the channel's report).
        api_requests = round(
            sum(
                stage.invocations_per_message
                for stage in measure.stages
                if stage.function_id in api_functions_of
            ),
            3,
        )
        lines, total = cost_lines(measure, profiles, api_requests)
        costs[workflow] = {
            "unit": measure.unit,
            "usd_per_million": round(total, 2),
            "lines": [{"what": w, "arithmetic": a, "usd_per_million": round(c, 3)} for w, a, c in lines],
        }

    report = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "prices": PRICES,
        "api_import_ratio": {fid: entry["ratio"] for fid, entry in imports.items()},
        "api_import_cpu_ms": {fid: entry["handler_cpu_ms"] for fid, entry in imports.items()},
        "api_import": imports,
        "api_import_floor": floor,
        "api_import_dev_venv": dev_imports,
        "baseline_ref": args.baseline,
        "dynamodb_writes_per_message": {w: m.total("dynamodb_write_units") for w, m in measures.items()},
        "aws_calls_per_message": {w: m.total("aws_calls_total") for w, m in measures.items()},
        "per_message": {
            w: {"unit": m.unit, "messages": m.messages, "stages": [vars(s) for s in m.stages]}
            for w, m in measures.items()
        },
        "functions": profiles,
        "cost_per_million_usd": {w: c["usd_per_million"] for w, c in costs.items()},
        "cost_per_million_inbound_usd": costs["inbound-sms"]["usd_per_million"],
        "costs": costs,
        "seconds": round(time.monotonic() - started, 1),
    }
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2))
    print_report(report)
    return 0


@contextlib.contextmanager
def _checkout(ref: str | None) -> Iterator[Path | None]:
    """A detached worktree of `ref` for as long as it is needed (nothing for None)."""
    if ref is None:
        yield None
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as parent:
        tree = Path(parent) / "tree"
        git = ["git", "-C", str(ROOT)]
        subprocess.run([*git, "worktree", "add", "--detach", "--quiet", str(tree), ref], check=True)
        try:
            yield tree
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=False)


def print_report(report: dict[str, Any]) -> None:
    print(
        "\nAPI handler cold import as deployed (`make build`'s output, Lambda's sys.path, no dev"
        " packages; CPU time, median of paired runs, ratio to `import boto3` from the same layer)"
    )
    for fid, entry in report["api_import"].items():
        before = entry["without_bytecode"]
        print(
            f"  {fid:<28} {entry['ratio']:>5.2f}x"
            f"  ({entry['handler_cpu_ms']} ms vs {entry['boto3_cpu_ms']} ms);"
            f" without the shipped bytecode {before['ratio']:.2f}x"
            f" ({before['handler_cpu_ms']} ms vs {before['boto3_cpu_ms']} ms)"
        )
    floor = report["api_import_floor"]
    print(
        f"  {'floor (clients, PII key, logger, a model)':<28} {floor['ratio']:>5.2f}x"
        f"  ({floor['handler_cpu_ms']} ms vs {floor['boto3_cpu_ms']} ms): what any API handler does first"
    )
    print(
        "\nAPI handler cold import in the dev venv (bytecode cached; the venv's dev packages make"
        " `import boto3` heavier than in Lambda)"
    )
    for fid, entry in report["api_import_dev_venv"].items():
        print(
            f"  {fid:<28} {entry['ratio']:>5.2f}x"
            f"  ({entry['handler_cpu_ms']} ms vs {entry['boto3_cpu_ms']} ms;"
            f" X-Ray SDK loaded: {entry['xray_sdk_loaded']})"
        )
        if "baseline" in entry:
            before = entry["baseline"]
            print(
                f"  {'  baseline ' + report['baseline_ref']:<28} {before['ratio']:>5.2f}x"
                f"  ({before['handler_cpu_ms']} ms in the same runs;"
                f" X-Ray SDK loaded: {before['xray_sdk_loaded']})"
            )
    print("\nPer message: AWS calls, DynamoDB units, log bytes")
    for workflow, data in report["per_message"].items():
        for stage in data["stages"]:
            counts = stage["counts"]
            print(
                f"  {workflow:<14} {stage['function_id']:<31} calls {counts['aws_calls_total']:>6}"
                f"  WRU {counts['dynamodb_write_units']:>5}  RRU {counts['dynamodb_read_units']:>5}"
                f"  logs {counts['log_bytes']:>6} B"
            )
    print("\nFunctions on the local stack (warm duration, peak memory of the process)")
    for fid, profile in report["functions"].items():
        print(
            f"  {fid:<31} warm median {profile['warm_ms_median']} ms, p95 {profile['warm_ms_p95']} ms"
            f" over {profile['warm_invocations']};"
            f" peak {profile['peak_memory_mb']} MB of {profile['memory_size_mb']}"
        )
    print("\nCost per million (list prices, " + report["prices"]["region"] + ")")
    for workflow, cost in report["costs"].items():
        print(f"  {workflow}, per million ({cost['unit']}): ${cost['usd_per_million']:.2f}")
        for line in cost["lines"]:
            print(f"    {line['what']:<36} ${line['usd_per_million']:>7.3f}   {line['arithmetic']}")
    print(f"\nwrote {REPORT.relative_to(ROOT)} in {report['seconds']} s")


if __name__ == "__main__":
    raise SystemExit(main())
