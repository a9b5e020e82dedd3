"""Opt-outs and consent end to end over HTTP, on the local stack's two CXone environments."""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.e2e.conftest import HTTP_TIMEOUT_SECONDS, get_json, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

GROUPS = {"primary": "1", "emea": "7"}
SYNC_TIMEOUT = 30


def _call(stack: dict[str, Any], method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"x-api-key": stack["api_key"]}
    return requests.request(
        method, f"{stack['api']}{path}", headers=headers, timeout=HTTP_TIMEOUT_SECONDS, **kwargs
    )


def _in_every_group(stack: dict[str, Any], digits: str) -> bool:
    dnc = get_json(f"{stack['cxone']}/_sim/state")["dnc"]
    return all(digits in dnc.get(group, []) for group in GROUPS.values())


def test_an_opt_out_reaches_both_environments_and_the_lookup_shows_it_masked(
    local_stack: dict[str, Any],
) -> None:
    # 020 7946 0xxx is Ofcom's drama range: valid, and never a real subscriber.
    local = f"020 7946 0{random.randint(200, 999)}"
    e164 = "+44" + local.replace(" ", "")[1:]

    response = _call(local_stack, "POST", "/opt-out", json={"phone": local, "source": "ivr", "region": "gb"})

    assert response.status_code == 202, response.text
    assert response.json() == {"status": "queued", "phone": e164}
    wait_for(
        lambda: _in_every_group(local_stack, e164.lstrip("+")), SYNC_TIMEOUT, "the number in both DNC groups"
    )
    lookup = _call(local_stack, "GET", f"/consent/{quote(e164, safe='')}")
    assert lookup.status_code == 200
    body = lookup.json()
    assert (body["phone"], body["status"]) == (f"***{e164[-4:]}", "opted_out")
    assert [entry["source"] for entry in body["history"]] == ["ivr"]
    assert sorted(state["environment"] for state in body["dnc"]) == ["emea", "primary"]
    assert e164.lstrip("+") not in lookup.text


def test_the_consent_routes_need_the_api_key(local_stack: dict[str, Any]) -> None:
    for method, path in (("POST", "/opt-out"), ("POST", "/opt-in"), ("GET", "/consent/%2B14155552671")):
        response = requests.request(
            method, f"{local_stack['api']}{path}", json={}, timeout=HTTP_TIMEOUT_SECONDS
        )
        assert response.status_code == 403, (method, path)
