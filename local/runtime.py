"""One template function running under the real Lambda Runtime Interface Emulator, without Docker.

aws-sam-cli ships the emulator (samcli/local/rapid/aws-lambda-rie-*) that `sam local invoke` puts in
its containers. Run natively, with this venv's python and awslambdaric as the runtime client, it
gives the same invoke API, the same init-on-first-invoke, timeout and error reporting as a Lambda
container; one emulator process here is one warm execution environment.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeGuard

import requests

from local.provision import Provisioned
from local.template import LOCAL_REGION, ROOT, Template

logger = logging.getLogger(__name__)

INVOKE_PATH = "/2015-03-31/functions/function/invocations"
COMMON_LAYER_DIR = ROOT / "layers" / "common"
DTMF_AUDIT_HOOK_PATH = "/hooks/dtmf-audit"
FAKE_CREDENTIAL = "testing"
# The first invoke also runs the module's init (imports, clients, settings); Lambda allows 10 s
# for it on top of the function timeout, and a slow CI machine deserves the same headroom.
INIT_ALLOWANCE_SECONDS = 30.0
START_TIMEOUT_SECONDS = 10.0
STOP_GRACE_SECONDS = 5.0
START_ATTEMPTS = 3
# What awslambdaric answers for an unhandled exception (200 for the invoke, 502 for init).
_ERROR_KEYS = frozenset({"errorMessage", "errorType", "requestId", "stackTrace"})
# The emulator's own chatter; function output stays at INFO.
_EMULATOR_PREFIXES = ("START RequestId", "END RequestId", "REPORT RequestId")
CLOCK_SHIFT_VARIABLES = ("LD_PRELOAD", "FAKETIME", "FAKETIME_NO_CACHE", "DONT_FAKE_MONOTONIC")


class FunctionError(Exception):
    """The function failed the way Lambda reports it: unhandled exception, init failure, timeout."""

    def __init__(self, error_type: str, message: str, stack_trace: list[str] | None = None) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace or []

    def to_json(self) -> dict[str, Any]:
        return {"errorType": self.error_type, "errorMessage": self.message, "stackTrace": self.stack_trace}


@dataclass(frozen=True)
class LocalUrls:
    """Where the local stand-ins for AWS, CXone and the ticketing system listen."""

    aws: str
    cxone: str
    ticketing: str


@dataclass(frozen=True)
class FunctionSpec:
    """Everything needed to start one function: what the template says, resolved for local use."""

    function_id: str
    function_name: str
    code_dir: Path
    handler: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "function_id": self.function_id,
            "function_name": self.function_name,
            "code_dir": str(self.code_dir),
            "handler": self.handler,
            "timeout_seconds": self.timeout_seconds,
            "memory_mb": self.memory_mb,
            "environment": dict(self.environment),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FunctionSpec:
        return cls(
            function_id=str(data["function_id"]),
            function_name=str(data["function_name"]),
            code_dir=Path(data["code_dir"]),
            handler=str(data["handler"]),
            timeout_seconds=int(data["timeout_seconds"]),
            memory_mb=int(data["memory_mb"]),
            environment={str(k): str(v) for k, v in data["environment"].items()},
        )


def cxone_environments_for(template_value: str, cxone_url: str) -> str:
    """The template's CXone environments, each pointed at the simulator; other fields are kept."""
    environments = json.loads(template_value)
    for environment in environments:
        environment["auth_url"] = cxone_url
        environment["api_base_url"] = cxone_url
        # A DFO override would still lead to the real platform; the simulator serves DFO too.
        if "dfo_base_url" in environment:
            environment["dfo_base_url"] = cxone_url
    return json.dumps(environments)


def local_environment(provisioned: Provisioned, function_id: str, urls: LocalUrls) -> dict[str, str]:
    """The function's template environment with every outside endpoint replaced by a local one."""
    environment = provisioned.function_environment(function_id)
    environment.update(
        {
            "AWS_ENDPOINT_URL": urls.aws,
            "AWS_ACCESS_KEY_ID": FAKE_CREDENTIAL,
            "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIAL,
            "AWS_SESSION_TOKEN": FAKE_CREDENTIAL,
            "AWS_REGION": LOCAL_REGION,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            # No X-Ray daemon runs locally; the tracer would only log failures to reach one.
            "POWERTOOLS_TRACE_DISABLED": "1",
        }
    )
    if "CXONE_ENVIRONMENTS" in environment:
        environment["CXONE_ENVIRONMENTS"] = cxone_environments_for(
            environment["CXONE_ENVIRONMENTS"], urls.cxone
        )
    if "TICKETING_BASE_URL" in environment:
        environment["TICKETING_BASE_URL"] = urls.ticketing
    if "STATUS_WEBHOOK_ALLOW_LOCAL" in environment:
        # A send's webhookUrl may point at the local simulators (http, loopback).
        environment["STATUS_WEBHOOK_ALLOW_LOCAL"] = "true"
    if "DTMF_AUDIT_WEBHOOK_URL" in environment:
        # The ticketing simulator records whatever is posted under /hooks/.
        environment["DTMF_AUDIT_WEBHOOK_URL"] = f"{urls.ticketing}{DTMF_AUDIT_HOOK_PATH}"
    return environment


def function_spec(provisioned: Provisioned, function_id: str, urls: LocalUrls) -> FunctionSpec:
    template: Template = provisioned.template
    props = template.function_properties(function_id)
    name = provisioned.resolver.resolve(props.get("FunctionName")) or function_id
    return FunctionSpec(
        function_id=function_id,
        function_name=str(name),
        code_dir=(ROOT / str(props["CodeUri"])).resolve(),
        handler=str(props.get("Handler", "app.lambda_handler")),
        timeout_seconds=int(props.get("Timeout", 3)),
        memory_mb=int(props.get("MemorySize", 128)),
        environment=local_environment(provisioned, function_id, urls),
    )


def emulator_binary() -> Path:
    """The RIE build for this machine, from the installed aws-sam-cli."""
    import samcli

    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower()
    )
    if arch is None:
        raise RuntimeError(f"no Lambda Runtime Interface Emulator build for {platform.machine()}")
    path = Path(samcli.__file__).parent / "local" / "rapid" / f"aws-lambda-rie-{arch}"
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is missing or not executable; reinstall aws-sam-cli (make setup)")
    return path


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all probes are held open together, so no two are the same)."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def parse_invocation(status: int, body: bytes) -> Any:
    """The handler's result, or FunctionError for whatever the emulator reports as a failure."""
    text = body.decode("utf-8", errors="replace")
    try:
        payload = json.loads(text) if text else None
    except ValueError:
        # A timeout is the one failure the emulator reports as plain text.
        error_type = "Sandbox.Timedout" if text.startswith("Task timed out") else "Runtime.InvalidResponse"
        raise FunctionError(error_type, text.strip()[:1000]) from None
    if _is_error_payload(payload):
        raise FunctionError(
            str(payload["errorType"]), str(payload["errorMessage"]), payload.get("stackTrace")
        )
    if status != 200:
        raise FunctionError(f"Runtime.HTTP{status}", text[:1000])
    return payload


def _is_error_payload(payload: Any) -> TypeGuard[dict[str, Any]]:
    return (
        isinstance(payload, dict)
        and {"errorType", "errorMessage"} <= payload.keys()
        and payload.keys() <= _ERROR_KEYS
    )


class FunctionRuntime:
    """One RIE process for one function: one execution environment, so invocations are
    serialised, as in one Lambda container (FunctionPool runs several)."""

    def __init__(self, spec: FunctionSpec, python: str = sys.executable) -> None:
        self.spec = spec
        self._python = python
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._http = requests.Session()
        self._log = logging.getLogger(f"local.function.{spec.function_id}")
        self._closed = False
        self.port = 0
        # Each invocation's duration from the emulator's REPORT line (the first includes init).
        self.durations_ms: list[float] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        self._closed = False
        self._restart(timeout)

    def _restart(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        # Ports are picked before the emulator binds them; if something takes one in between the
        # emulator exits at once, and other ports are tried.
        problem: Exception | None = None
        for _ in range(START_ATTEMPTS):
            if self._closed:
                break
            try:
                port, runtime_api_port = free_ports(2)
                self._spawn(port, runtime_api_port, timeout)
                return
            except RuntimeError as exc:
                problem = exc
                self._terminate()
        raise RuntimeError(f"{self.spec.function_id} did not start: {problem}")

    def invoke(self, event: Any) -> Any:
        with self._lock:
            if self._closed:
                raise FunctionError("Runtime.Stopped", f"{self.spec.function_id} has been stopped")
            if not self.running:
                # Like Lambda replacing a dead execution environment (the next invoke cold-starts).
                self._log.warning("emulator is not running; starting a new one")
                try:
                    self._restart()
                except RuntimeError as exc:
                    raise FunctionError("Runtime.Unavailable", str(exc)) from exc
            try:
                response = self._http.post(
                    self.url + INVOKE_PATH,
                    data=json.dumps(event).encode(),
                    timeout=(3.0, self.spec.timeout_seconds + INIT_ALLOWANCE_SECONDS),
                )
            except requests.RequestException as exc:
                raise FunctionError("Runtime.Unavailable", f"{type(exc).__name__}: {exc}") from exc
            return parse_invocation(response.status_code, response.content)

    def peak_memory_mb(self) -> float | None:
        """The function process's peak resident memory (VmHWM) so far: what Lambda reports as
        Max Memory Used. The emulator itself reports its configured size, so this reads the
        runtime process it started."""
        process = self._process
        if process is None:
            return None
        peaks = [_peak_rss_mb(child) for child in _children(process.pid)]
        found = [peak for peak in peaks if peak is not None]
        return max(found) if found else None

    def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        # Closed first: an invoke racing with stop() must not bring a new emulator up.
        self._closed = True
        self._terminate(grace_seconds)
        self._http.close()

    def __enter__(self) -> FunctionRuntime:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- process ------------------------------------------------------------------------------

    def _spawn(self, port: int, runtime_api_port: int, timeout: float) -> None:
        self.port = port
        command = [
            str(emulator_binary()),
            "--runtime-interface-emulator-address",
            f"127.0.0.1:{port}",
            # The runtime API (emulator <-> awslambdaric) defaults to 127.0.0.1:9001, which would
            # make a second emulator on this machine fail; every emulator gets its own.
            "--runtime-api-address",
            f"127.0.0.1:{runtime_api_port}",
            self._python,
            "-m",
            "awslambdaric",
            self.spec.handler,
        ]
        self._process = subprocess.Popen(
            command,
            cwd=self.spec.code_dir,
            env=self._process_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        if self._closed:  # stop() ran while this emulator was being spawned
            self._terminate()
            raise RuntimeError("stopped while starting")
        stdout = self._process.stdout
        assert stdout is not None
        self._reader = threading.Thread(
            target=_forward_output,
            args=(stdout, self._log, self.durations_ms),
            name=f"rie-log:{self.spec.function_id}",
            daemon=True,
        )
        self._reader.start()
        _wait_for_port(port, self._process, time.monotonic() + timeout)

    def _process_environment(self) -> dict[str, str]:
        """A clean environment like Lambda's: the reserved variables plus the function's own."""
        spec = self.spec
        reserved = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": "UTC",
            "PYTHONPATH": str(COMMON_LAYER_DIR),
            "PYTHONUNBUFFERED": "1",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_seconds),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            # Keep the developer's ~/.aws profiles out: everything must go to the emulation.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        # A clock shifted for the whole run (libfaketime: `faketime '+365 days' make test`) must
        # reach the functions too, or they and the tests would disagree about what time it is.
        shifted = {name: os.environ[name] for name in CLOCK_SHIFT_VARIABLES if name in os.environ}
        return reserved | shifted | spec.environment

    def _terminate(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(timeout=2.0)
            self._reader = None


def _wait_for_port(port: int, process: subprocess.Popen[str], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"emulator exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"emulator did not accept connections on port {port} in time")


_REPORT_DURATION = re.compile(r"^REPORT RequestId: \S+.*?\tDuration: ([0-9.]+) ms")


def _forward_output(stream: IO[str], log: logging.Logger, durations_ms: list[float]) -> None:
    """Function and emulator output, line by line, into the stack's log; each invocation's
    duration (the emulator's REPORT line, as Lambda reports it) into `durations_ms`."""
    for line in _lines(stream):
        report = _REPORT_DURATION.match(line)
        if report:
            durations_ms.append(float(report.group(1)))
        if "(rapid)" in line or line.startswith(_EMULATOR_PREFIXES):
            log.debug("%s", line)
        elif line.startswith("[ERROR]"):
            log.warning("%s", line)
        else:
            log.info("%s", line)


def _lines(stream: IO[str]) -> Iterable[str]:
    try:
        for raw in stream:
            line = raw.rstrip()
            if line:
                yield line
    except ValueError:  # the pipe was closed under us during shutdown
        return


class FunctionPool:
    """Up to `size` execution environments of one function, as Lambda runs concurrent invocations:
    an invoke takes an idle environment, starts a new one (a cold start) when all are busy and
    the pool is not full, or else waits for one to come free. One is started up front."""

    def __init__(
        self,
        spec: FunctionSpec,
        size: int = 4,
        environment: Callable[[FunctionSpec], FunctionRuntime] = FunctionRuntime,
    ) -> None:
        if size < 1:
            raise ValueError("a function needs at least one execution environment")
        self.spec = spec
        self.size = size
        self._new_environment = environment
        self._idle: list[FunctionRuntime] = []
        self._all: list[FunctionRuntime] = []
        self._available = threading.Condition()
        self._closed = False

    @property
    def environments(self) -> int:
        with self._available:
            return len(self._all)

    def durations_ms(self) -> list[float]:
        """Invocation durations of every environment, first (cold) ones left out."""
        with self._available:
            runtimes = list(self._all)
        return [duration for runtime in runtimes for duration in runtime.durations_ms[1:]]

    def peak_memory_mb(self) -> float | None:
        with self._available:
            runtimes = list(self._all)
        peaks = [peak for runtime in runtimes if (peak := runtime.peak_memory_mb()) is not None]
        return max(peaks) if peaks else None

    def start(self) -> None:
        runtime = self._new_environment(self.spec)
        runtime.start()
        with self._available:
            self._all.append(runtime)
            self._idle.append(runtime)

    def invoke(self, event: Any) -> Any:
        runtime = self._take()
        try:
            return runtime.invoke(event)
        finally:
            with self._available:
                self._idle.append(runtime)
                self._available.notify()

    def _take(self) -> FunctionRuntime:
        with self._available:
            while True:
                if self._closed:
                    raise FunctionError("Runtime.Stopped", f"{self.spec.function_id} has been stopped")
                if self._idle:
                    return self._idle.pop()
                if len(self._all) < self.size:
                    runtime = self._new_environment(self.spec)
                    self._all.append(runtime)
                    break
                self._available.wait()
        # Started outside the lock: other invokes may take idle environments meanwhile.
        try:
            runtime.start()
        except RuntimeError as exc:
            with self._available:
                self._all.remove(runtime)
                self._available.notify()
            raise FunctionError("Runtime.Unavailable", str(exc)) from exc
        return runtime

    def stop(self) -> None:
        with self._available:
            self._closed = True
            runtimes = list(self._all)
            self._available.notify_all()
        for runtime in runtimes:
            runtime.stop()


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children.extend(int(child) for child in task.read_text().split())
        except (OSError, ValueError):
            continue
    return children


def _peak_rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None
