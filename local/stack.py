"""`make serve`: the whole relay on this machine, built from template.yaml, with no Docker or AWS.

moto (server mode) stands in for AWS with every queue, table and secret the template declares;
the CXone and ticketing simulators stand in for the outside world; each function runs warm under
the Lambda Runtime Interface Emulator; an HTTP front plays API Gateway, and one poller per SQS
event source plays Lambda's event source mapping. Everything listens on 127.0.0.1 only.

    python -m local.stack [--port 3000] [--state-dir .local] [--retry-delay 1]

Once ready, <state-dir>/stack.json says where everything is (`python -m local.invoke` reads it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from local.builders import queue_depth
from local.front import LocalFront, schedule_triggers
from local.poller import QueuePoller
from local.provision import Provisioned, provision
from local.runtime import FAKE_CREDENTIAL, FunctionPool, LocalUrls, function_spec
from local.simulators import CxoneSimulator, TicketingSimulator
from local.template import LOCAL_EMEA_SECRET, LOCAL_REGION, ROOT, QueueSource, Template, load_template

logger = logging.getLogger("local.stack")

DEFAULT_PORT = 3000
DEFAULT_STATE_DIR = ROOT / ".local"
STATE_FILE = "stack.json"
# Local development credentials: the CXone simulator accepts exactly these, and the stack stores
# them in the template's credentials secret (the primary environment) and in the second
# environment's own secret, so the functions authenticate as in production, each environment
# with its own credentials.
LOCAL_CXONE_CREDENTIALS = {
    "client_id": "local-relay-client",
    "client_secret": "local-relay-client-secret",
    "access_key_id": "local-relay-access-key",
    "access_key_secret": "local-relay-access-key-secret",
}
LOCAL_EMEA_CREDENTIALS = {
    "client_id": "local-relay-emea-client",
    "client_secret": "local-relay-emea-client-secret",
    "access_key_id": "local-relay-emea-access-key",
    "access_key_secret": "local-relay-emea-access-key-secret",
}
# Lambda waits up to MaximumBatchingWindowInSeconds to fill a batch; locally a second is enough
# to batch a burst and keeps interactive use snappy.
MAX_LOCAL_BATCHING_WINDOW = 1.0
# Execution environments per function (Lambda runs many; enough here for races to show).
DEFAULT_ENVIRONMENTS = 4
IDLE_SLEEP_SECONDS = 0.1
# Each poller's wait for a first record (SQS long polling; Lambda's pollers wait up to 20 s).
LONG_POLL_SECONDS = 1
ERROR_SLEEP_SECONDS = 1.0
POLLER_JOIN_SECONDS = 5.0


class LocalStack:
    """The local stack, started and stopped in-process (the demo and tests drive it directly)."""

    def __init__(
        self,
        port: int = 0,
        state_dir: Path | None = None,
        retry_delay_seconds: int = 1,
        *,
        pollers: bool = True,
        template: Template | None = None,
        environments: int = DEFAULT_ENVIRONMENTS,
    ) -> None:
        self.port = port
        self.state_dir = state_dir
        self.retry_delay_seconds = retry_delay_seconds
        self.with_pollers = pollers
        self.template = template or load_template()
        # Fresh secrets per run: nothing local is worth reusing, and nothing leaks between runs.
        self.api_key = secrets.token_hex(16)
        self.ticketing_api_key = secrets.token_hex(16)
        self.webhook_secret = secrets.token_hex(32)
        self.session = boto3.Session(
            aws_access_key_id=FAKE_CREDENTIAL,
            aws_secret_access_key=FAKE_CREDENTIAL,
            aws_session_token=FAKE_CREDENTIAL,
            region_name=LOCAL_REGION,
        )
        self.moto_url = ""
        self.front_url = ""
        self.startup_seconds = 0.0
        self.provisioned: Provisioned | None = None
        self.cxone = CxoneSimulator(credentials=[LOCAL_CXONE_CREDENTIALS, LOCAL_EMEA_CREDENTIALS])
        self.ticketing = TicketingSimulator(api_key=self.ticketing_api_key)
        self.environments = environments
        self.runtimes: dict[str, FunctionPool] = {}
        self._moto: ThreadedMotoServer | None = None
        self._front: LocalFront | None = None
        self._pollers: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._state_file: Path | None = None
        self._started: list[Callable[[], None]] = []
        # boto3 sessions are not thread-safe (clients are): client creation is serialised.
        self._session_lock = threading.Lock()
        self._sqs: Any = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LocalStack:
        started = time.monotonic()
        try:
            self._start_moto()
            self.provisioned = provision(
                self.template,
                session=self.session,
                endpoint_url=self.moto_url,
                secret_values={
                    "CxoneCredentialsSecret": json.dumps(LOCAL_CXONE_CREDENTIALS),
                    "TicketingApiKeySecret": json.dumps({"api_key": self.ticketing_api_key}),
                    # stack.json's webhook_secret: what the demo and a developer sign reports with.
                    "DeliveryWebhookSecret": json.dumps({"current": self.webhook_secret, "previous": ""}),
                },
                extra_secrets={LOCAL_EMEA_SECRET: json.dumps(LOCAL_EMEA_CREDENTIALS)},
            )
            self._start_simulators()
            self._start_runtimes()
            self._start_front()
            if self.with_pollers:
                self._start_pollers()
            self.startup_seconds = time.monotonic() - started
            if self.state_dir is not None:
                self._write_state(self.state_dir)
        except BaseException:
            self.stop()
            raise
        logger.info("local stack ready in %.1f s", self.startup_seconds)
        return self

    def stop(self) -> None:
        """Stop everything that was started, newest first; safe to call twice."""
        self._stopping.set()
        if self._state_file is not None:
            self._state_file.unlink(missing_ok=True)
            self._state_file = None
        while self._started:
            stop = self._started.pop()
            try:
                stop()
            except Exception:
                logger.exception("stopping %s failed", getattr(stop, "__qualname__", stop))

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what the demo, tests and the front use ----------------------------------------------

    @property
    def urls(self) -> LocalUrls:
        return LocalUrls(aws=self.moto_url, cxone=self.cxone.url, ticketing=self.ticketing.url)

    def boto3_session_client(self, service: str) -> Any:
        """A boto3 client for the local AWS emulation (moto)."""
        # Typed Any on purpose: boto3-stubs types clients per literal service name only.
        make_client: Any = self.session.client
        with self._session_lock:
            return make_client(service, region_name=LOCAL_REGION, endpoint_url=self.moto_url)

    def invoke(self, function_id: str, event: dict[str, Any]) -> Any:
        return self.runtimes[function_id].invoke(event)

    def function_description(self, function_id: str) -> dict[str, Any] | None:
        if self.provisioned is None or function_id not in self.template.function_ids():
            return None
        description = function_spec(self.provisioned, function_id, self.urls).to_json()
        if function_id in self.runtimes:
            description["environments_started"] = self.runtimes[function_id].environments
        return description

    def queue_report(self) -> dict[str, Any]:
        """Depth of every queue of the template, keyed by logical id."""
        provisioned = self.resources()
        depths = {queue_id: queue_depth(self._sqs, url) for queue_id, url in provisioned.queues.items()}
        report: dict[str, Any] = {}
        for queue_id, url in provisioned.queues.items():
            entry: dict[str, Any] = {"url": url, **depths[queue_id]}
            dlq = provisioned.dead_letter_queue_of(queue_id)
            if dlq is not None and dlq in depths:
                entry["dlq"] = dlq
                entry["dlq_visible"] = depths[dlq]["visible"]
            report[queue_id] = entry
        return report

    def queue_depth(self, queue_id: str) -> int:
        """Messages in a queue, visible, in flight or delayed."""
        return sum(queue_depth(self._sqs, self.resources().queues[queue_id]).values())

    def wait_until_drained(
        self, timeout: float = 60.0, interval: float = 0.25, settled_polls: int = 3
    ) -> bool:
        """True once every queue with a consumer has held nothing (visible, in flight or delayed)
        for `settled_polls` polls in a row: one empty poll can fall between a failed record's
        return and its next receive."""
        consumed = {source.queue_id for source in self.template.queue_sources()}
        deadline = time.monotonic() + timeout
        empty_in_a_row = 0
        while time.monotonic() < deadline:
            pending = sum(self.queue_depth(queue_id) for queue_id in consumed)
            empty_in_a_row = empty_in_a_row + 1 if pending == 0 else 0
            if empty_in_a_row >= settled_polls:
                return True
            time.sleep(interval)
        return False

    # -- parts -------------------------------------------------------------------------------

    def _start_moto(self) -> None:
        # moto's request handler logs every AWS call through werkzeug's logger, which werkzeug
        # sends to stderr at INFO unless someone configured it: quiet it, unless someone did.
        werkzeug_logger = logging.getLogger("werkzeug")
        if werkzeug_logger.level == logging.NOTSET:
            werkzeug_logger.setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        self._moto = server
        self._started.append(server.stop)
        host, port = server.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        self._sqs = self.boto3_session_client("sqs")

    def _start_simulators(self) -> None:
        for simulator in (self.cxone, self.ticketing):
            simulator.start()
            self._started.append(simulator.stop)

    def _start_runtimes(self) -> None:
        provisioned = self.resources()
        for function_id in self.template.function_ids():
            runtime = FunctionPool(function_spec(provisioned, function_id, self.urls), size=self.environments)
            self.runtimes[function_id] = runtime
            self._started.append(runtime.stop)
        # Each emulator takes a moment to come up; start them side by side.
        with ThreadPoolExecutor(max_workers=max(1, len(self.runtimes))) as pool:
            for future in [pool.submit(runtime.start) for runtime in self.runtimes.values()]:
                future.result()

    def _start_front(self) -> None:
        provisioned = self.resources()
        front = LocalFront(
            backend=self,
            routes=self.template.api_routes(),
            schedules=schedule_triggers(self.template, provisioned.resolver.resolve),
            api_key=self.api_key,
            stage=_api_stage(self.template, provisioned),
        )
        self.front_url = front.start(self.port)
        self._front = front
        self._started.append(front.stop)

    def _start_pollers(self) -> None:
        """One poller thread per concurrent invocation the event source allows (its
        MaximumConcurrency, capped by the function's environments), as Lambda scales its pollers."""
        provisioned = self.resources()
        self._stopping.clear()
        for source in self.template.queue_sources():
            concurrency = min(source.maximum_concurrency or self.environments, self.environments)
            for slot in range(concurrency):
                poller = QueuePoller(
                    # A client per poller, so one slow call never waits on another's connections.
                    self.boto3_session_client("sqs"),
                    provisioned.queues[source.queue_id],
                    provisioned.resolver.get_att(source.queue_id, "Arn"),
                    source,
                    invoke=self.runtimes[source.function_id].invoke,
                    retry_delay_seconds=self.retry_delay_seconds,
                    long_poll_seconds=LONG_POLL_SECONDS,
                    batching_window_seconds=min(
                        float(source.batching_window_seconds), MAX_LOCAL_BATCHING_WINDOW
                    ),
                )
                thread = threading.Thread(
                    target=self._poll,
                    args=(poller, source),
                    name=f"poller:{source.queue_id}:{slot}",
                    daemon=True,
                )
                thread.start()
                self._pollers.append(thread)
        self._started.append(self._join_pollers)

    def _poll(self, poller: QueuePoller, source: QueueSource) -> None:
        """Deliver batches until stopped; a failure is logged and retried, never fatal."""
        while not self._stopping.is_set():
            try:
                result = poller.deliver_once()
            except Exception:
                if self._stopping.is_set():
                    return
                logger.exception("poller for %s failed; retrying", source.queue_id)
                self._stopping.wait(ERROR_SLEEP_SECONDS)
                continue
            if result.received == 0:
                self._stopping.wait(IDLE_SLEEP_SECONDS)
                continue
            logger.info(
                "%s -> %s: %d received, %d failed%s",
                source.queue_id,
                source.function_id,
                result.received,
                result.failed,
                f" ({result.error})" if result.error else "",
            )

    def _join_pollers(self) -> None:
        # Runtimes stop after this (they were started first), so an invoke in progress may hold a
        # poller for up to its timeout; a daemon thread left behind then dies with the process.
        self._stopping.set()
        for thread in self._pollers:
            thread.join(POLLER_JOIN_SECONDS)
        self._pollers.clear()

    def _write_state(self, state_dir: Path) -> None:
        """stack.json appears only when everything answers, and atomically, so a reader never
        sees a half-written file or a stack that is still starting."""
        state_dir.mkdir(parents=True, exist_ok=True)
        target = state_dir / STATE_FILE
        temporary = state_dir / f".{STATE_FILE}.{os.getpid()}.tmp"
        state = {
            "api": self.front_url,
            "api_key": self.api_key,
            "aws": self.moto_url,
            "cxone": self.cxone.url,
            "ticketing": self.ticketing.url,
            "webhook_secret": self.webhook_secret,
            "pid": os.getpid(),
        }
        # The file holds the API key: readable by its owner only.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(state, handle, indent=2)
        os.replace(temporary, target)
        self._state_file = target

    def resources(self) -> Provisioned:
        """What the stack created from template.yaml (queue urls, table names, secret arns)."""
        if self.provisioned is None:
            raise RuntimeError("the local stack is not started")
        return self.provisioned


def _api_stage(template: Template, provisioned: Provisioned) -> str:
    for resource in template.resources_of_type("AWS::Serverless::Api").values():
        stage = resource.get("Properties", {}).get("StageName")
        if stage is not None:
            return str(provisioned.resolver.resolve(stage))
    return "dev"


# -- command line ----------------------------------------------------------------------------


def summary(stack: LocalStack) -> str:
    template = stack.template
    consumers = {source.queue_id: source for source in template.queue_sources()}
    lines = [
        f"cxone-relay local stack ready in {stack.startup_seconds:.1f} s",
        f"  API         {stack.front_url}   (header x-api-key: {stack.api_key})",
        f"  AWS (moto)  {stack.moto_url}",
        f"  CXone sim   {stack.cxone.url}",
        f"  Ticketing   {stack.ticketing.url}",
    ]
    for route in template.api_routes():
        key = ", api key" if route.api_key_required else ""
        lines.append(f"  Route       {route.method} {route.path} -> {route.function_id}{key}")
    lines.append(f"  Functions   {', '.join(stack.runtimes)}")
    for queue_id in stack.resources().queues:
        source = consumers.get(queue_id)
        consumer = f" -> {source.function_id} (batch {source.batch_size})" if source else " (no consumer)"
        lines.append(f"  Queue       {queue_id}{consumer}")
    lines.append(f"  Queues      {stack.front_url}/_local/queues")
    if stack.state_dir is not None:
        lines.append(f"  State       {stack.state_dir / STATE_FILE}")
    lines.append("Ctrl-C to stop.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="API port; 0 picks a free one")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="where stack.json goes")
    parser.add_argument(
        "--retry-delay", type=int, default=1, help="seconds before a failed SQS record is visible again"
    )
    parser.add_argument(
        "--environments",
        type=int,
        default=DEFAULT_ENVIRONMENTS,
        help="execution environments per function (concurrent invocations), started as needed",
    )
    parser.add_argument("--verbose", action="store_true", help="also show the emulators' own log lines")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    stopping = threading.Event()
    # SIGTERM (CI, containers, the e2e fixture) stops as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    stack = LocalStack(
        port=args.port,
        state_dir=args.state_dir,
        retry_delay_seconds=args.retry_delay,
        environments=args.environments,
    )
    try:
        stack.start()
    except Exception:
        logger.exception("the local stack did not start")
        return 1
    try:
        print(summary(stack), flush=True)
        # A timed wait keeps the main thread responsive to signals.
        while not stopping.wait(1.0):
            pass
    finally:
        logger.info("stopping the local stack")
        stack.stop()
        logger.info("local stack stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
