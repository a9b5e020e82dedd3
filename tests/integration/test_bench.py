"""`make bench` counts what the handlers do: its per-message AWS calls for every workflow equal
the requests moto itself received over the same stages (moto's request recorder: a second count,
made on the server side, that shares nothing with the bench's botocore hooks)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from moto.moto_api import recorder

from local import bench

# The services' JSON-protocol target prefixes, as the recorder sees them in X-Amz-Target.
SERVICE_OF_TARGET = {
    "DynamoDB_20120810": "dynamodb",
    "AmazonSQS": "sqs",
    "AmazonSSM": "ssm",
    "secretsmanager": "secretsmanager",
}
# Made by Lambda's event source mapping, which the local poller plays; not the handlers' calls.
EVENT_SOURCE_MAPPING = {"sqs.ReceiveMessage", "sqs.DeleteMessage", "sqs.ChangeMessageVisibility"}
MESSAGES = 4


def _operations(recording: str) -> Counter[str]:
    operations: Counter[str] = Counter()
    for line in recording.splitlines():
        headers = {name.lower(): value for name, value in json.loads(line)["headers"].items()}
        prefix, _, operation = headers["x-amz-target"].partition(".")
        name = f"{SERVICE_OF_TARGET[prefix]}.{operation}"
        if name not in EVENT_SOURCE_MAPPING:
            operations[name] += 1
    return operations


@pytest.fixture
def recorded_stages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Counter[str]]:
    """Each scenario stage's requests, as moto received them."""
    monkeypatch.setattr(recorder, "_location", str(tmp_path / "recording.jsonl"))
    stages: dict[str, Counter[str]] = {}
    measure_stage = bench.Scenario.stage

    def recorded(self: bench.Scenario, function_id: str, *args: Any) -> bench.Stage:
        recorder.reset_recording()
        recorder.start_recording()
        try:
            return measure_stage(self, function_id, *args)
        finally:
            recorder.stop_recording()
            stages[function_id] = _operations(recorder.download_recording())

    monkeypatch.setattr(bench.Scenario, "stage", recorded)
    return stages


@pytest.mark.parametrize("scenario", bench.SCENARIOS, ids=lambda s: s.workflow)
def test_the_bench_counts_every_call_the_handlers_make(scenario, recorded_stages) -> None:
    [measure] = bench.per_message(MESSAGES, [scenario]).values()

    assert [stage.function_id for stage in measure.stages] == list(recorded_stages)
    for stage in measure.stages:
        received = recorded_stages[stage.function_id]
        assert sum(received.values()) > 0, f"{stage.function_id} made no AWS call at all"
        assert stage.counts["aws_calls"] == {
            name: round(count / MESSAGES, 3) for name, count in sorted(received.items())
        }, stage.function_id


def test_dynamodb_item_sizes_follow_dynamodb_rules() -> None:
    # Names and values in UTF-8 bytes; a number is 1 byte per two significant digits plus 1.
    assert bench.item_size({"pk": {"S": "abc"}}) == 5
    assert bench.item_size({"n": {"N": "12345"}}) == 1 + 4
    assert bench.item_size({"n": {"N": "-0.0012"}}) == 1 + 2
    assert bench.item_size({"é": {"S": "ü"}}) == 4
    assert bench.item_size({"m": {"M": {"a": {"BOOL": True}}}}) == 1 + 3 + 1 + 1 + 1


def test_capacity_units_round_each_item_up_to_a_whole_kilobyte() -> None:
    small = {"pk": {"S": "x"}}
    big = {"pk": {"S": "x" * 1500}}
    assert bench.capacity_units("PutItem", {"Item": small}) == (1, 0.0)
    assert bench.capacity_units("PutItem", {"Item": big}) == (2, 0.0)
    batch = {"RequestItems": {"t": [{"PutRequest": {"Item": small}}, {"PutRequest": {"Item": big}}]}}
    assert bench.capacity_units("BatchWriteItem", batch) == (3.0, 0.0)
    assert bench.capacity_units("GetItem", {"ConsistentRead": True}) == (0.0, 1.0)
    assert bench.capacity_units("GetItem", {}) == (0.0, 0.5)
    reads = {"RequestItems": {"t": {"Keys": [small, small], "ConsistentRead": True}, "u": {"Keys": [small]}}}
    assert bench.capacity_units("BatchGetItem", reads) == (0.0, 2.5)


def test_a_deployed_import_sees_only_lambdas_sys_path_and_writes_no_bytecode(tmp_path: Path) -> None:
    """What makes the 'as deployed' cold import honest: none of the dev venv's packages (moto,
    awscrt) can load, and nothing compiled is cached for the next run, as in read-only Lambda."""
    code = tmp_path / "task"
    code.mkdir()
    (code / "probe.py").write_text("VALUE = 1\n")
    script = (
        "import json, importlib.util, sys, probe\n"
        "print(json.dumps({'dev': [n for n in ('moto', 'awscrt') if importlib.util.find_spec(n)],"
        " 'first': sys.path[0]}))"
    )

    seen = bench._deployed_python(script, [str(code)], {"PATH": "/usr/bin:/bin"})

    assert seen == {"dev": [], "first": str(code)}
    assert not (code / "__pycache__").exists()


def test_the_build_without_bytecode_keeps_every_file_but_the_compiled_ones(tmp_path: Path) -> None:
    build = tmp_path / "build"
    (build / "Layer" / "python" / "pkg" / "__pycache__").mkdir(parents=True)
    (build / "Layer" / "python" / "pkg" / "mod.py").write_text("X = 1\n")
    (build / "Layer" / "python" / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"pyc")
    (build / "template.yaml").write_text("Resources: {}\n")

    copy = bench._without_bytecode(build, tmp_path / "copy")

    assert sorted(str(p.relative_to(copy)) for p in copy.rglob("*") if p.is_file()) == [
        "Layer/python/pkg/mod.py",
        "template.yaml",
    ]
