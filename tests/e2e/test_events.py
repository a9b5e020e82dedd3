"""Every sample event in events/ runs through the emulator path of `make invoke` (one cold
invocation under the Lambda Runtime Interface Emulator, against the session's local stack) and
returns what events/manifest.json says it should."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.invoke import invoke_event
from tests.e2e.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

EVENTS_DIR = ROOT / "events"
MANIFEST = EVENTS_DIR / "manifest.json"


def _manifest() -> dict[str, Any]:
    if not MANIFEST.exists():
        return {}
    manifest: dict[str, Any] = json.loads(MANIFEST.read_text())
    return manifest


def contains(actual: Any, expected: Any) -> bool:
    """`expected` is a subset of `actual`: dicts recursively by key, anything else by equality."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and contains(actual[key], value) for key, value in expected.items()
        )
    return bool(actual == expected)


NO_EVENTS = pytest.param("", marks=pytest.mark.skip(reason="events/manifest.json lists no events"))


@pytest.mark.parametrize("name", sorted(_manifest()) or [NO_EVENTS])
def test_event_runs_under_the_emulator(name: str, local_stack: dict[str, Any]) -> None:
    entry = _manifest()[name]
    event = json.loads(Path(EVENTS_DIR / name).read_text())

    result = invoke_event(local_stack, entry["function"], event)

    assert contains(result, entry["expect"]), f"{name}: {result!r} does not contain {entry['expect']!r}"
