"""The local CXone and ticketing simulators, driven over real HTTP on 127.0.0.1.

Time never passes for real here: token expiry reads an injected clock and fault latency calls an
injected sleeper that only records how long it was asked to sleep.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
import requests

from local.builders import social_contact
from local.simulators import CxoneSimulator, TicketingSimulator

TIMEOUT = 5
CLIENT = ("relay-client", "relay-secret")
ACCESS_KEY = {"username": "relay-access-key", "password": "relay-access-secret"}
CHANNEL = "chan-sms-1"
STORE_PATH = f"/dfo/3.0/channels/{CHANNEL}/messages"
OUTBOUND_PATH = f"/dfo/3.0/channels/{CHANNEL}/outbound"
CONTACTS_PATH = "/dfo/3.0/contacts"
DNC_PATH = "/inContactAPI/services/v32.0/dnc-groups/group-7/records"
DTMF_PATH = "/inContactAPI/services/v23.0/agent-sessions/{session}/send-dtmf"
TICKET_KEY = {"x-api-key": "local-ticketing-key"}

Simulator = CxoneSimulator | TicketingSimulator


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class CxoneClient:
    """requests bound to one simulator, carrying a bearer token from the password grant."""

    def __init__(self, sim: CxoneSimulator) -> None:
        self.url = sim.url
        self.token = fetch_token(sim).json()["access_token"]

    def __call__(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> requests.Response:
        merged = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return requests.request(method, f"{self.url}{path}", headers=merged, timeout=TIMEOUT, **kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def cxone(clock: FakeClock, sleeps: list[float]) -> Iterator[CxoneSimulator]:
    with CxoneSimulator(clock=clock, sleeper=sleeps.append) as sim:
        yield sim


@pytest.fixture
def api(cxone: CxoneSimulator) -> CxoneClient:
    return CxoneClient(cxone)


@pytest.fixture
def ticketing(sleeps: list[float]) -> Iterator[TicketingSimulator]:
    with TicketingSimulator(sleeper=sleeps.append) as sim:
        yield sim


def fetch_token(
    sim: CxoneSimulator, grant_type: str = "password", auth: tuple[str, str] | None = CLIENT, **form: str
) -> requests.Response:
    defaults = ACCESS_KEY if grant_type == "password" else {}
    data = {"grant_type": grant_type, **defaults, **form}
    return requests.post(f"{sim.url}/auth/token", data=data, auth=auth, timeout=TIMEOUT)


def sim_call(sim: Simulator, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{sim.url}{path}", timeout=TIMEOUT, **kwargs)


def inbound(external_id: str = "sms-1", **extra: Any) -> dict[str, Any]:
    return {
        "idOnExternalPlatform": external_id,
        "direction": "inbound",
        "createdAtWithMilliseconds": "2024-05-01T10:00:00.000Z",
        "thread": {"idOnExternalPlatform": "thread-+15551234567"},
        "messageContent": {"type": "TEXT", "payload": {"text": "hello"}},
        "authorEndUserIdentity": {"idOnExternalPlatform": "+15551234567"},
        **extra,
    }


def outbound(text: str = "reply") -> dict[str, Any]:
    return {
        "thread": {"idOnExternalPlatform": "thread-+15551234567"},
        "messageContent": {"type": "TEXT", "payload": {"text": text}},
        "recipients": [{"idOnExternalPlatform": "+15551234567", "isPrimary": True}],
    }


def first_error(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    assert body["uid"], "CXone errors carry a uid"
    error: dict[str, Any] = body["errors"][0]
    return error


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


# -- discovery and OAuth ----------------------------------------------------------------------


def test_openid_configuration_points_at_the_simulator_token_endpoint(cxone: CxoneSimulator) -> None:
    config = sim_call(cxone, "GET", "/.well-known/openid-configuration").json()

    assert config["issuer"] == cxone.url
    assert config["token_endpoint"] == f"{cxone.url}/auth/token"
    assert config["authorization_endpoint"].startswith(cxone.url)
    assert config["jwks_uri"].startswith(cxone.url)


def test_cxone_configuration_answers_the_known_tenant_only(cxone: CxoneSimulator) -> None:
    known = sim_call(cxone, "GET", "/.well-known/cxone-configuration", params={"tenantId": "sim-tenant"})
    unknown = sim_call(cxone, "GET", "/.well-known/cxone-configuration", params={"tenantId": "other"})

    assert known.status_code == 200
    assert known.json() == {
        "private": False,
        "area": "na1",
        "domain": "niceincontact.com",
        "api_endpoint": cxone.url,
        "ui_endpoint": cxone.url,
        "auth_endpoint": cxone.url,
        "tenantId": "sim-tenant",
    }
    assert unknown.status_code == 404
    assert first_error(unknown)["field"] == "tenantId"


def test_password_grant_issues_a_working_bearer_token_and_id_token(cxone: CxoneSimulator) -> None:
    response = fetch_token(cxone)

    assert response.status_code == 200
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["refresh_token"]
    assert tokens["issued_token_type"]
    claims = jwt_claims(tokens["id_token"])
    assert claims["tenantId"] == "sim-tenant"
    assert {"icBUId", "icClusterId"} <= claims.keys()
    contacts = sim_call(
        cxone, "GET", CONTACTS_PATH, headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert contacts.status_code == 200
    assert cxone.state()["tokens_issued"] == 1


@pytest.mark.parametrize(
    "form",
    [
        {"username": "someone-else"},
        {"password": "wrong-secret"},
    ],
)
def test_password_grant_rejects_a_wrong_access_key(cxone: CxoneSimulator, form: dict[str, str]) -> None:
    response = fetch_token(cxone, **form)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert cxone.state()["tokens_issued"] == 0


@pytest.mark.parametrize("auth", [None, ("relay-client", "wrong"), ("other-client", "relay-secret")])
def test_token_endpoint_requires_client_basic_auth(
    cxone: CxoneSimulator, auth: tuple[str, str] | None
) -> None:
    response = fetch_token(cxone, auth=auth)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert cxone.state()["tokens_issued"] == 0


def test_client_credentials_grant_needs_only_basic_auth(cxone: CxoneSimulator) -> None:
    response = fetch_token(cxone, grant_type="client_credentials")
    refused = fetch_token(cxone, grant_type="client_credentials", auth=("relay-client", "wrong"))

    assert response.status_code == 200
    assert response.json()["access_token"]
    assert refused.status_code == 401


def test_refresh_token_grant_accepts_only_issued_refresh_tokens(cxone: CxoneSimulator) -> None:
    first = fetch_token(cxone).json()

    refreshed = fetch_token(cxone, grant_type="refresh_token", refresh_token=first["refresh_token"])
    forged = fetch_token(cxone, grant_type="refresh_token", refresh_token="forged")

    assert refreshed.status_code == 200
    assert refreshed.json()["access_token"] != first["access_token"]
    assert forged.status_code == 400
    assert forged.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("grant_type", ["authorization_code", ""])
def test_unknown_grant_type_is_rejected(cxone: CxoneSimulator, grant_type: str) -> None:
    response = fetch_token(cxone, grant_type=grant_type)

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_access_token_expires_after_its_ttl(api: CxoneClient, clock: FakeClock) -> None:
    clock.now += 3599
    still_valid = api("GET", CONTACTS_PATH)
    clock.now += 1
    expired = api("GET", CONTACTS_PATH)

    assert still_valid.status_code == 200
    assert expired.status_code == 401
    assert first_error(expired)["errorCode"] == "InvalidToken"


def test_sim_tokens_expire_revokes_every_access_token(cxone: CxoneSimulator, api: CxoneClient) -> None:
    assert api("GET", CONTACTS_PATH).status_code == 200

    assert sim_call(cxone, "POST", "/_sim/tokens/expire").status_code == 200

    assert api("GET", CONTACTS_PATH).status_code == 401
    api.token = fetch_token(cxone).json()["access_token"]
    assert api("GET", CONTACTS_PATH).status_code == 200


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer not-issued"}, {"Authorization": "Basic eDp5"}]
)
def test_api_calls_need_an_issued_bearer_token(cxone: CxoneSimulator, headers: dict[str, str]) -> None:
    response = sim_call(cxone, "POST", STORE_PATH, json=inbound(), headers=headers)

    assert response.status_code == 401
    assert first_error(response)["errorCode"] == "InvalidToken"
    assert cxone.state()["messages"] == {}


# -- DFO 3.0 ----------------------------------------------------------------------------------


def test_store_message_dedupes_on_channel_and_external_id(cxone: CxoneSimulator, api: CxoneClient) -> None:
    path = STORE_PATH

    first = api("POST", path, json=inbound("sms-1"))
    repeat = api("POST", path, json=inbound("sms-1"), headers={"Idempotency-Key": "a-different-key"})
    other_channel = api("POST", "/dfo/3.0/channels/chan-2/messages", json=inbound("sms-1"))

    assert first.status_code == 201
    assert first.json()["idOnExternalPlatform"] == "sms-1"
    assert first.json()["threadIdOnExternalPlatform"] == "thread-+15551234567"
    assert first.json()["id"]
    assert first.json()["createdAt"]
    assert repeat.status_code == 409  # refused whatever Idempotency-Key it carries
    assert repeat.json()["errors"][0]["errorCode"] == "MessageAlreadyExists"
    assert other_channel.status_code == 201
    stored = cxone.state()["messages"]
    assert len(stored[CHANNEL]) == 1
    assert len(stored["chan-2"]) == 1


@pytest.mark.parametrize(
    "path",
    [
        "idOnExternalPlatform",
        "thread.idOnExternalPlatform",
        "messageContent.type",
        "messageContent.payload.text",
        "direction",
    ],
)
def test_store_message_names_the_missing_field(cxone: CxoneSimulator, api: CxoneClient, path: str) -> None:
    body = inbound()
    *parents, leaf = path.split(".")
    target = body
    for parent in parents:
        target = target[parent]
    del target[leaf]

    response = api("POST", STORE_PATH, json=body)

    assert response.status_code == 400
    assert first_error(response)["field"] == path
    assert cxone.state()["messages"] == {}


def test_store_message_keeps_extra_fields(cxone: CxoneSimulator, api: CxoneClient) -> None:
    api("POST", STORE_PATH, json=inbound(routingQueueId="queue-9"))

    (stored,) = cxone.state()["messages"][CHANNEL]
    assert stored["routingQueueId"] == "queue-9"
    assert stored["authorEndUserIdentity"] == {"idOnExternalPlatform": "+15551234567"}


def test_outbound_idempotency_key_replays_the_first_answer(cxone: CxoneSimulator, api: CxoneClient) -> None:
    path = OUTBOUND_PATH

    first = api("POST", path, json=outbound(), headers={"Idempotency-Key": "k-1"})
    replay = api("POST", path, json=outbound(), headers={"Idempotency-Key": "k-1"})
    assert len(cxone.state()["outbound"]) == 1
    other_key = api("POST", path, json=outbound(), headers={"Idempotency-Key": "k-2"})
    api("POST", path, json=outbound())
    api("POST", path, json=outbound())

    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert first.json()["status"] == "sent"
    assert first.json()["idOnExternalPlatform"]
    assert other_key.json()["id"] != first.json()["id"]
    assert len(cxone.state()["outbound"]) == 4  # k-1 once, k-2 once, two without a key


@pytest.mark.parametrize(
    ("recipients", "field"),
    [([], "recipients"), ([{"name": "x"}], "recipients[0].idOnExternalPlatform")],
)
def test_outbound_requires_recipients(
    cxone: CxoneSimulator, api: CxoneClient, recipients: list[Any], field: str
) -> None:
    response = api("POST", OUTBOUND_PATH, json={**outbound(), "recipients": recipients})

    assert response.status_code == 400
    assert first_error(response)["field"] == field
    assert cxone.state()["outbound"] == []


def test_outbound_requires_text(api: CxoneClient) -> None:
    body = outbound()
    del body["messageContent"]["payload"]["text"]

    response = api("POST", OUTBOUND_PATH, json=body)

    assert response.status_code == 400
    assert first_error(response)["field"] == "messageContent.payload.text"


def test_delivery_status_accepts_known_statuses_only(cxone: CxoneSimulator, api: CxoneClient) -> None:
    path = f"{STORE_PATH}/out-1/status"

    ok = api("PUT", path, json={"status": "delivered", "updatedAt": "2024-05-01T10:00:01Z"})
    bad = api("PUT", path, json={"status": "read", "updatedAt": "2024-05-01T10:00:02Z"})

    assert ok.status_code == 200
    assert bad.status_code == 400
    assert first_error(bad)["field"] == "status"
    assert cxone.state()["statuses"] == [
        {
            "channelId": CHANNEL,
            "idOnExternalPlatform": "out-1",
            "status": "delivered",
            "updatedAt": "2024-05-01T10:00:01Z",
            "reason": None,
        }
    ]


def contact(number: int, status: str = "new", messages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": f"c-{number}",
        "channel": CHANNEL,
        "subject": f"subject {number}",
        "body": f"body {number}",
        "createdAt": "2024-05-01T10:00:00Z",
        "updatedAt": "2024-05-01T10:05:00Z",
        "status": status,
        "messages": messages or [],
    }


def scroll(api: CxoneClient, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of a listing, following scrollToken until it comes back empty."""
    pages = [api("GET", path, params=params).json()]
    while pages[-1]["scrollToken"]:
        assert len(pages) < 10, "scrollToken never ran out"
        pages.append(api("GET", path, params={"scrollToken": pages[-1]["scrollToken"]}).json())
    return pages


def test_contacts_page_with_scroll_token_to_the_end(cxone: CxoneSimulator, api: CxoneClient) -> None:
    sim_call(cxone, "POST", "/_sim/contacts", json=[contact(n) for n in range(5)])
    sim_call(cxone, "POST", "/_sim/page-size", json={"page_size": 2})

    pages = scroll(api, CONTACTS_PATH, {})

    assert [[c["id"] for c in page["data"]] for page in pages] == [["c-0", "c-1"], ["c-2", "c-3"], ["c-4"]]
    assert [page["hits"] for page in pages] == [5, 5, 5]
    assert pages[-1]["scrollToken"] == ""
    assert "messages" not in pages[0]["data"][0]


def test_contacts_filters_hold_across_pages(cxone: CxoneSimulator, api: CxoneClient) -> None:
    cxone.load_contacts([contact(0, "closed"), contact(1, "new"), contact(2, "closed"), contact(3, "closed")])
    cxone.set_page_size(2)

    pages = scroll(api, CONTACTS_PATH, {"status[]": "closed", "channel[]": CHANNEL})

    assert [c["id"] for page in pages for c in page["data"]] == ["c-0", "c-2", "c-3"]
    assert pages[0]["hits"] == 3


def test_messages_listing_pages_over_messages_of_loaded_contacts(
    cxone: CxoneSimulator, api: CxoneClient
) -> None:
    cxone.load_contacts(
        [
            contact(
                0, messages=[{"id": "m-1", "direction": "inbound"}, {"id": "m-2", "direction": "outbound"}]
            ),
            contact(1, messages=[{"id": "m-3", "direction": "inbound"}]),
        ]
    )
    cxone.set_page_size(1)

    pages = scroll(api, "/dfo/3.0/messages", {"direction": "inbound"})

    assert [(m["id"], m["contactId"]) for page in pages for m in page["data"]] == [
        ("m-1", "c-0"),
        ("m-3", "c-1"),
    ]


def test_unknown_scroll_token_is_rejected(api: CxoneClient) -> None:
    response = api("GET", CONTACTS_PATH, params={"scrollToken": "made-up"})

    assert response.status_code == 400
    assert first_error(response)["field"] == "scrollToken"


def test_contacts_are_served_in_dfo_shape_and_their_messages_from_the_messages_listing(
    cxone: CxoneSimulator, api: CxoneClient
) -> None:
    loaded = social_contact(
        "c-1",
        "Where is my order?",
        updated_at=datetime(2024, 5, 1, 10, 5, tzinfo=UTC),
        created_at=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        channel="FACEBOOK",
        subject="Order",
        body="body text",
        replies=("On its way",),
    )
    cxone.load_contacts([loaded])

    [served] = api("GET", CONTACTS_PATH).json()["data"]
    messages = api("GET", "/dfo/3.0/messages", params={"contactId[]": "c-1"}).json()["data"]

    assert served == {
        "id": "c-1",
        "threadId": "thread-c-1",
        "status": "open",
        "direction": "inbound",
        "channelId": "FACEBOOK",
        "createdAt": "2024-05-01T10:00:00.000Z",
        "updatedAt": "2024-05-01T10:05:00.000Z",
        "statusUpdatedAt": "2024-05-01T10:05:00.000Z",
        "preview": "On its way",
        "subject": "Order",
        "body": "body text",
    }
    assert [(m["id"], m["direction"], m["contactId"], m["channelId"]) for m in messages] == [
        ("c-1-in", "inbound", "c-1", "FACEBOOK"),
        ("c-1-out-0", "outbound", "c-1", "FACEBOOK"),
    ]
    assert messages[0]["messageContent"] == {"type": "TEXT", "payload": {"text": "Where is my order?"}}


def test_the_date_window_has_day_resolution_on_updated_at(cxone: CxoneSimulator, api: CxoneClient) -> None:
    def at(day: int, hour: int) -> datetime:
        return datetime(2024, 5, day, hour, tzinfo=UTC)

    cxone.load_contacts(
        [
            social_contact("before", "x", updated_at=at(1, 23)),
            social_contact("first-day", "x", updated_at=at(2, 0), created_at=at(1, 1)),
            social_contact("last-day", "x", updated_at=at(3, 23)),
            social_contact("after", "x", updated_at=at(4, 0)),
        ]
    )

    window = {"date[from]": "2024-05-02", "date[to]": "2024-05-03"}
    served = [c["id"] for c in api("GET", CONTACTS_PATH, params=window).json()["data"]]
    from_only = api("GET", CONTACTS_PATH, params={"date[from]": "2024-05-03"}).json()["data"]

    assert served == ["first-day", "last-day"]
    assert [c["id"] for c in from_only] == ["last-day", "after"]
    bad = api("GET", CONTACTS_PATH, params={"date[to]": "2024-05-03T00:00:00Z"})
    assert bad.status_code == 400 and first_error(bad)["field"] == "date[to]"


def test_contacts_sort_by_updated_at_either_way_and_keep_ties_in_order(
    cxone: CxoneSimulator, api: CxoneClient
) -> None:
    moment = datetime(2024, 5, 1, 10, tzinfo=UTC)
    cxone.load_contacts(
        [
            social_contact("late", "x", updated_at=moment.replace(hour=12)),
            social_contact("tie-1", "x", updated_at=moment),
            social_contact("tie-2", "x", updated_at=moment),
            social_contact("early", "x", updated_at=moment.replace(hour=8)),
        ]
    )

    def ids(**params: str) -> list[str]:
        return [c["id"] for c in api("GET", CONTACTS_PATH, params=params).json()["data"]]

    assert ids(sorting="updatedAt", sortingType="asc") == ["early", "tie-1", "tie-2", "late"]
    assert ids(sorting="updatedAt") == ["early", "tie-1", "tie-2", "late"]
    assert ids(sorting="updatedAt", sortingType="desc") == ["late", "tie-1", "tie-2", "early"]
    assert ids() == ["late", "tie-1", "tie-2", "early"]  # unsorted: as loaded
    assert first_error(api("GET", CONTACTS_PATH, params={"sorting": "id"}))["field"] == "sorting"
    bad_type = api("GET", CONTACTS_PATH, params={"sorting": "updatedAt", "sortingType": "up"})
    assert first_error(bad_type)["field"] == "sortingType"


def test_a_scroll_keeps_what_its_first_page_selected(cxone: CxoneSimulator, api: CxoneClient) -> None:
    moment = datetime(2024, 5, 1, 10, tzinfo=UTC)
    cxone.load_contacts([social_contact(f"c-{n}", "x", updated_at=moment) for n in range(3)])
    cxone.set_page_size(2)
    first = api("GET", CONTACTS_PATH, params={"channel[]": "FACEBOOK"}).json()

    rest = api("GET", CONTACTS_PATH, params={"scrollToken": first["scrollToken"], "channel[]": "X"}).json()

    assert [c["id"] for c in rest["data"]] == ["c-2"]
    assert rest["hits"] == 3


def test_sim_contacts_rejects_contacts_without_id(cxone: CxoneSimulator) -> None:
    response = sim_call(cxone, "POST", "/_sim/contacts", json=[contact(0), {"channel": CHANNEL}])

    assert response.status_code == 400
    assert first_error(response)["field"] == "[1].id"


# -- Admin API: DNC ---------------------------------------------------------------------------


def dnc_body(*phones: Any) -> dict[str, Any]:
    return {"dncGroupRecords": [{"phoneNumber": phone} for phone in phones]}


def test_dnc_reports_bad_numbers_per_record_with_http_200(cxone: CxoneSimulator, api: CxoneClient) -> None:
    response = api("POST", DNC_PATH, json=dnc_body("15551234567", "555-1234", "123456", "1234567890123456"))
    api("POST", DNC_PATH, json=dnc_body("15551234567"))

    assert response.status_code == 200
    result = response.json()["resultSet"]
    assert result["errorCount"] == 3
    assert [r["success"] for r in result["recordResults"]] == [True, False, False, False]
    assert result["recordResults"][0] == {"success": True, "error": None, "formattedPhone": "15551234567"}
    assert all(r["error"] for r in result["recordResults"][1:])
    assert cxone.state()["dnc"] == {"group-7": ["15551234567"]}


def test_dnc_delete_and_search(cxone: CxoneSimulator, api: CxoneClient) -> None:
    search = "/inContactAPI/services/v32.0/dnc-groups/search"
    api("POST", DNC_PATH, json=dnc_body("15551234567", "15557654321"))

    found = api("POST", search, params={"phoneNumber": "15551234567"}).json()["resultSet"]
    deleted = api("DELETE", DNC_PATH, json=dnc_body("15551234567"))
    gone = api("POST", search, params={"phoneNumber": "15551234567"}).json()["resultSet"]

    assert found["found"] is True
    assert found["dncGroupRecords"] == [{"dncGroupId": "group-7", "phoneNumber": "15551234567"}]
    assert deleted.status_code == 200
    assert deleted.json()["resultSet"]["errorCount"] == 0
    assert gone["found"] is False
    assert cxone.state()["dnc"] == {"group-7": ["15557654321"]}


def test_dnc_honours_idempotency_key(cxone: CxoneSimulator, api: CxoneClient) -> None:
    key = {"Idempotency-Key": "dnc-1"}
    api("POST", DNC_PATH, json=dnc_body("15551234567"), headers=key)
    api("DELETE", DNC_PATH, json=dnc_body("15551234567"))

    replay = api("POST", DNC_PATH, json=dnc_body("15551234567"), headers=key)

    assert replay.status_code == 200
    assert replay.json()["resultSet"]["errorCount"] == 0
    assert cxone.state()["dnc"] == {"group-7": []}  # the replay did not add the number again


def test_dnc_records_can_be_made_to_fail_per_group_a_number_of_times(
    cxone: CxoneSimulator, api: CxoneClient
) -> None:
    other = "/inContactAPI/services/v32.0/dnc-groups/group-1/records"
    cxone.fail_dnc_records(["15551234567"], "Record locked", count=2, group_id="group-7")

    first = api("POST", DNC_PATH, json=dnc_body("15551234567", "15557654321")).json()["resultSet"]
    elsewhere = api("POST", other, json=dnc_body("15551234567")).json()["resultSet"]
    second = api("POST", DNC_PATH, json=dnc_body("15551234567")).json()["resultSet"]
    third = api("POST", DNC_PATH, json=dnc_body("15551234567")).json()["resultSet"]

    assert first == {
        "errorCount": 1,
        "recordResults": [
            {"success": False, "error": "Record locked", "formattedPhone": "15551234567"},
            {"success": True, "error": None, "formattedPhone": "15557654321"},
        ],
    }
    assert elsewhere["errorCount"] == 0  # another group is not affected
    assert second["errorCount"] == 1 and third["errorCount"] == 0
    assert cxone.state()["dnc"] == {"group-7": ["15551234567", "15557654321"], "group-1": ["15551234567"]}


def test_dnc_failures_without_a_group_or_count_apply_everywhere_every_time(
    cxone: CxoneSimulator, api: CxoneClient
) -> None:
    sim_call(
        cxone, "POST", "/_sim/dnc-failures", json={"phones": ["15551234567"], "error": "Invalid phoneNumber"}
    )

    for _ in range(3):
        assert api("POST", DNC_PATH, json=dnc_body("15551234567")).json()["resultSet"]["errorCount"] == 1
    assert cxone.state()["dnc"] == {"group-7": []}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"phones": [], "error": "x"}, "phones"),
        ({"phones": ["+15551234567"], "error": "x"}, "phones"),
        ({"phones": "15551234567", "error": "x"}, "phones"),
        ({"phones": ["15551234567"], "error": ""}, "error"),
        ({"phones": ["15551234567"], "error": "x", "count": 0}, "count"),
        ({"phones": ["15551234567"], "error": "x", "group_id": ""}, "group_id"),
    ],
)
def test_dnc_failure_specs_are_validated(cxone: CxoneSimulator, spec: dict[str, Any], field: str) -> None:
    response = sim_call(cxone, "POST", "/_sim/dnc-failures", json=spec)
    assert response.status_code == 400
    assert first_error(response)["field"] == field


def test_several_credential_sets_each_get_tokens_and_their_calls_are_logged_by_client() -> None:
    emea = {
        "client_id": "emea-client",
        "client_secret": "emea-secret",
        "access_key_id": "emea-key",
        "access_key_secret": "emea-key-secret",
    }
    with CxoneSimulator(credentials=[{}, emea]) as sim:
        primary_token = fetch_token(sim).json()["access_token"]
        emea_token = fetch_token(
            sim, auth=("emea-client", "emea-secret"), username="emea-key", password="emea-key-secret"
        ).json()["access_token"]
        crossed = fetch_token(sim, auth=("emea-client", "emea-secret"))  # primary's access key
        for token in (primary_token, emea_token):
            sim_call(
                sim,
                "POST",
                DNC_PATH,
                json=dnc_body("15551234567"),
                headers={"Authorization": f"Bearer {token}"},
            )

        assert crossed.status_code == 400 and crossed.json()["error"] == "invalid_grant"
        assert [call["client_id"] for call in sim.requests(path_prefix=DNC_PATH)] == [
            "relay-client",
            "emea-client",
        ]
        assert "client_id" not in sim.requests(path_prefix="/auth/token")[0]
        assert sim.credentials["client_id"] == "relay-client"


@pytest.mark.parametrize(
    "sets",
    [[], [{"client_id": "same"}, {"client_id": "same"}]],
)
def test_credential_sets_must_be_given_and_tell_clients_apart(sets: list[dict[str, str]]) -> None:
    with pytest.raises(ValueError, match="credential"):
        CxoneSimulator(credentials=sets)


@pytest.mark.parametrize("version", ["latest", "32.0", "v32"])
def test_admin_api_path_needs_a_version(api: CxoneClient, version: str) -> None:
    response = api("POST", f"/inContactAPI/services/{version}/dnc-groups/group-7/records", json=dnc_body())

    assert response.status_code == 404
    assert first_error(response)["errorCode"] == "NotFound"


# -- Agent API: DTMF --------------------------------------------------------------------------


def test_send_dtmf_to_an_unknown_session_is_404(cxone: CxoneSimulator, api: CxoneClient) -> None:
    response = api(
        "POST", DTMF_PATH.format(session="ghost"), json={"dtmfSequence": "1", "toneDurationMS": 100}
    )

    assert response.status_code == 404
    assert first_error(response)["errorCode"] == "SessionNotFound"
    assert cxone.state()["dtmf"] == []


def test_send_dtmf_accepts_a_json_body_or_query_parameters(cxone: CxoneSimulator, api: CxoneClient) -> None:
    sim_call(cxone, "POST", "/_sim/agent-sessions", json={"session_ids": ["s-1"]})
    path = DTMF_PATH.format(session="s-1")

    as_json = api("POST", path, json={"dtmfSequence": "12#", "toneDurationMS": 100, "toneSpacingMS": 50})
    as_query = api("POST", path, params={"dtmfSequence": "*9", "toneDurationMS": "120"})

    assert (as_json.status_code, as_json.content) == (202, b"")
    assert as_query.status_code == 202
    assert cxone.state()["dtmf"] == [
        {"sessionId": "s-1", "dtmfSequence": "12#", "toneDurationMS": 100, "toneSpacingMS": 50},
        {"sessionId": "s-1", "dtmfSequence": "*9", "toneDurationMS": 120, "toneSpacingMS": None},
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"toneDurationMS": 100}, "dtmfSequence"),
        ({"dtmfSequence": "1"}, "toneDurationMS"),
        ({"dtmfSequence": "1", "toneDurationMS": "fast"}, "toneDurationMS"),
    ],
)
def test_send_dtmf_validates_parameters(
    cxone: CxoneSimulator, api: CxoneClient, body: dict[str, Any], field: str
) -> None:
    cxone.add_agent_sessions(["s-1"])

    response = api("POST", DTMF_PATH.format(session="s-1"), json=body)

    assert response.status_code == 400
    assert first_error(response)["field"] == field
    assert cxone.state()["dtmf"] == []


# -- misc CXone behaviour ---------------------------------------------------------------------


def test_unknown_path_is_a_cxone_style_404(api: CxoneClient) -> None:
    response = api("GET", "/dfo/3.0/nothing-here")

    assert response.status_code == 404
    assert first_error(response)["errorCode"] == "NotFound"


def test_delete_sim_state_resets_effects_but_keeps_tokens(cxone: CxoneSimulator, api: CxoneClient) -> None:
    api("POST", STORE_PATH, json=inbound())

    assert sim_call(cxone, "DELETE", "/_sim/state").status_code == 204

    assert sim_call(cxone, "GET", "/_sim/state").json() == {
        "messages": {},
        "outbound": [],
        "statuses": [],
        "dnc": {},
        "dtmf": [],
        "tokens_issued": 0,
    }
    # The message is forgotten, so storing it again is a fresh 201 (and the old token still works).
    assert api("POST", STORE_PATH, json=inbound()).status_code == 201


# -- faults -----------------------------------------------------------------------------------


def add_fault(sim: Simulator, **spec: Any) -> None:
    response = sim_call(sim, "POST", "/_sim/faults", json=spec)
    assert response.status_code == 201, response.text


def test_fault_429_with_retry_after_seconds(cxone: CxoneSimulator, api: CxoneClient) -> None:
    add_fault(cxone, status=429, retry_after=7)

    response = api("POST", OUTBOUND_PATH, json=outbound())

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert first_error(response)["errorCode"] == "TooManyRequests"
    assert cxone.state()["outbound"] == []


def test_fault_retry_after_as_http_date(cxone: CxoneSimulator, api: CxoneClient) -> None:
    when = format_datetime(datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC), usegmt=True)
    add_fault(cxone, status=503, retry_after=when)

    response = api("GET", CONTACTS_PATH)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "Wed, 02 Jan 2030 03:04:05 GMT"


def test_fault_without_retry_after_sends_no_header(api: CxoneClient, cxone: CxoneSimulator) -> None:
    add_fault(cxone, status=500)

    response = api("GET", CONTACTS_PATH)

    assert response.status_code == 500
    assert "Retry-After" not in response.headers


def test_seeded_fault_rate_is_deterministic(cxone: CxoneSimulator, api: CxoneClient) -> None:
    add_fault(cxone, status=503, rate=0.5, seed=42)
    rng = random.Random(42)
    expected = [503 if rng.random() < 0.5 else 200 for _ in range(16)]

    statuses = [api("GET", CONTACTS_PATH).status_code for _ in range(16)]

    assert statuses == expected
    assert {200, 503} <= set(statuses)


def test_fault_count_is_spent(cxone: CxoneSimulator, api: CxoneClient) -> None:
    add_fault(cxone, status=500, count=2)

    statuses = [api("GET", CONTACTS_PATH).status_code for _ in range(4)]

    assert statuses == [500, 500, 200, 200]
    assert sim_call(cxone, "GET", "/_sim/faults").json()[0]["fired"] == 2


def test_fault_path_prefix_and_method_filters(cxone: CxoneSimulator, api: CxoneClient) -> None:
    add_fault(cxone, status=503, path_prefix="/dfo/3.0/channels/", method="post")

    store = api("POST", STORE_PATH, json=inbound())
    status = api("PUT", f"{STORE_PATH}/m/status", json={"status": "seen", "updatedAt": "t"})
    listing = api("GET", CONTACTS_PATH)

    assert (store.status_code, status.status_code, listing.status_code) == (503, 200, 200)


def test_fault_body_contains_filter(cxone: CxoneSimulator, api: CxoneClient) -> None:
    add_fault(cxone, status=500, body_contains="poison")
    path = OUTBOUND_PATH

    poisoned = api("POST", path, json=outbound("poison pill"))
    healthy = api("POST", path, json=outbound("all good"))

    assert (poisoned.status_code, healthy.status_code) == (500, 201)
    assert [o["messageContent"]["payload"]["text"] for o in cxone.state()["outbound"]] == ["all good"]


def test_first_matching_fault_applies(cxone: CxoneSimulator, api: CxoneClient) -> None:
    cxone.add_fault(status=429, path_prefix=CONTACTS_PATH)
    cxone.add_fault(status=500)

    assert api("GET", CONTACTS_PATH).status_code == 429
    assert api("GET", "/dfo/3.0/messages").status_code == 500


def test_faulted_request_is_logged_and_has_no_effect(cxone: CxoneSimulator, api: CxoneClient) -> None:
    path = STORE_PATH
    add_fault(cxone, status=503, count=1)

    faulted = api("POST", path, json=inbound("sms-9"))
    retried = api("POST", path, json=inbound("sms-9"))

    assert faulted.status_code == 503
    # 201, not 200: the faulted attempt never reached the de-duplication store.
    assert retried.status_code == 201
    assert [entry["status"] for entry in cxone.requests(path_prefix=path)] == [503, 201]
    assert len(cxone.state()["messages"][CHANNEL]) == 1


def test_latency_only_fault_delays_through_the_injected_sleeper(
    cxone: CxoneSimulator, api: CxoneClient, sleeps: list[float]
) -> None:
    add_fault(cxone, latency_ms=250, path_prefix="/dfo/")

    response = api("POST", STORE_PATH, json=inbound())

    assert response.status_code == 201
    assert sleeps == [0.25]
    assert len(cxone.state()["messages"][CHANNEL]) == 1


def test_latency_and_status_fault_delays_then_fails(
    cxone: CxoneSimulator, api: CxoneClient, sleeps: list[float]
) -> None:
    add_fault(cxone, status=504, latency_ms=1500)

    response = api("GET", CONTACTS_PATH)

    assert response.status_code == 504
    assert sleeps == [1.5]


def test_broad_fault_spares_auth_and_control_paths(cxone: CxoneSimulator) -> None:
    add_fault(cxone, status=503)

    assert fetch_token(cxone).status_code == 200
    assert sim_call(cxone, "GET", "/.well-known/openid-configuration").status_code == 200
    assert sim_call(cxone, "GET", "/_sim/state").status_code == 200
    assert CxoneClient(cxone)("GET", CONTACTS_PATH).status_code == 503


def test_fault_targeting_the_token_endpoint_fires(cxone: CxoneSimulator) -> None:
    add_fault(cxone, status=503, path_prefix="/auth/token", retry_after=2)

    response = fetch_token(cxone)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert cxone.state()["tokens_issued"] == 0


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"status": 200}, "status"),
        ({"status": "503"}, "status"),
        ({}, "status"),
        ({"status": 503, "rate": 1.5}, "rate"),
        ({"status": 429, "retry_after": "soon"}, "retry_after"),
        ({"status": 429, "retry_after": -1}, "retry_after"),
        ({"latency_ms": -5}, "latency_ms"),
        ({"status": 500, "count": 0}, "count"),
        ({"status": 500, "path_prefix": "dfo"}, "path_prefix"),
        ({"status": 500, "retry-after": 5}, "retry-after"),
    ],
)
def test_invalid_fault_is_rejected_naming_the_field(
    cxone: CxoneSimulator, spec: dict[str, Any], field: str
) -> None:
    response = sim_call(cxone, "POST", "/_sim/faults", json=spec)

    assert response.status_code == 400
    assert first_error(response)["field"] == field
    assert field in first_error(response)["message"]
    assert cxone.faults() == []


def test_python_add_fault_validates_too(cxone: CxoneSimulator) -> None:
    with pytest.raises(ValueError, match="rate"):
        cxone.add_fault(status=500, rate=-0.1)


def test_delete_sim_faults_clears_every_fault(cxone: CxoneSimulator, api: CxoneClient) -> None:
    add_fault(cxone, status=500)
    add_fault(cxone, status=429)

    assert sim_call(cxone, "DELETE", "/_sim/faults").status_code == 204

    assert api("GET", CONTACTS_PATH).status_code == 200


# -- request log ------------------------------------------------------------------------------


def test_request_log_records_each_request_and_redacts_authorization(
    cxone: CxoneSimulator, api: CxoneClient
) -> None:
    api("GET", CONTACTS_PATH, params=[("status[]", "new"), ("status[]", "open"), ("channel[]", CHANNEL)])
    api("POST", STORE_PATH, json=inbound(), headers={"Idempotency-Key": "abc"})

    log = sim_call(cxone, "GET", "/_sim/requests").json()

    token_call, listing, store = log
    assert token_call["path"] == "/auth/token"
    assert listing["method"] == "GET"
    assert listing["query"] == {"status[]": ["new", "open"], "channel[]": CHANNEL}
    assert listing["body"] is None
    assert listing["status"] == 200
    assert store["body"] == inbound()
    assert store["status"] == 201
    assert store["headers"]["authorization"] == "<redacted>"
    assert store["headers"]["idempotency-key"] == "abc"
    assert api.token not in json.dumps(log)


def test_token_request_is_logged_as_a_form_without_secrets(cxone: CxoneSimulator) -> None:
    fetch_token(cxone)

    (entry,) = cxone.requests(path_prefix="/auth/")

    assert entry["body"]["grant_type"] == "password"
    assert entry["body"]["username"] == "relay-access-key"
    assert "relay-access-secret" not in json.dumps(entry)
    assert entry["headers"]["authorization"] == "<redacted>"


def test_sim_paths_are_not_logged(cxone: CxoneSimulator, api: CxoneClient) -> None:
    sim_call(cxone, "GET", "/_sim/state")
    sim_call(cxone, "POST", "/_sim/faults", json={"status": 500, "path_prefix": "/nowhere"})
    api("GET", CONTACTS_PATH)

    assert [entry["path"] for entry in cxone.requests()] == ["/auth/token", CONTACTS_PATH]
    assert sim_call(cxone, "DELETE", "/_sim/requests").status_code == 204
    assert sim_call(cxone, "GET", "/_sim/requests").json() == []


def test_requests_accessor_filters_and_returns_copies(cxone: CxoneSimulator, api: CxoneClient) -> None:
    api("GET", CONTACTS_PATH)
    api("POST", OUTBOUND_PATH, json=outbound())

    posts = cxone.requests(method="post")
    posts[0]["status"] = 999

    assert [entry["path"] for entry in posts] == ["/auth/token", OUTBOUND_PATH]
    assert [entry["path"] for entry in cxone.requests(path_prefix=CONTACTS_PATH)] == [CONTACTS_PATH]
    assert cxone.requests()[0]["status"] == 200
    cxone.clear_requests()
    assert cxone.requests() == []


# -- ticketing --------------------------------------------------------------------------------


def ticket(ticket_id: str, subject: str = "Help") -> dict[str, Any]:
    return {
        "id": ticket_id,
        "external_id": f"cxone-{ticket_id}",
        "subject": subject,
        "description": "text",
        "status": "open",
        "created_at": "2024-05-01T10:00:00Z",
        "channel": "sms",
        "category": "billing",
        "queue": "q1",
        "language": "en",
        "keywords": ["refund"],
    }


def upsert(sim: TicketingSimulator, batch: Any, headers: dict[str, str] | None = None) -> requests.Response:
    headers = TICKET_KEY if headers is None else headers
    return sim_call(sim, "POST", "/api/v1/tickets/batch_upsert", json=batch, headers=headers)


def test_ticketing_upsert_creates_then_updates(ticketing: TicketingSimulator) -> None:
    created = upsert(ticketing, [ticket("t-1"), ticket("t-2")])
    updated = upsert(ticketing, [ticket("t-1", subject="Help, again"), ticket("t-3")])

    assert created.status_code == 200
    assert created.json() == {
        "results": [{"id": "t-1", "created": True}, {"id": "t-2", "created": True}],
        "created": 2,
        "updated": 0,
    }
    assert updated.json() == {
        "results": [{"id": "t-1", "created": False}, {"id": "t-3", "created": True}],
        "created": 1,
        "updated": 1,
    }
    stored = {t["id"]: t for t in sim_call(ticketing, "GET", "/_sim/tickets").json()}
    assert sorted(stored) == ["t-1", "t-2", "t-3"]
    assert stored["t-1"]["subject"] == "Help, again"


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}])
def test_ticketing_requires_the_api_key(ticketing: TicketingSimulator, headers: dict[str, str]) -> None:
    response = upsert(ticketing, [ticket("t-1")], headers=headers)

    assert response.status_code == 401
    assert ticketing.tickets() == []
    assert ticketing.requests()[0]["headers"].get("x-api-key", "<redacted>") == "<redacted>"


@pytest.mark.parametrize(
    ("batch", "field"),
    [
        ([ticket("t-1"), {**ticket("t-2"), "external_id": None}], "[1].external_id"),
        ([{k: v for k, v in ticket("t-1").items() if k != "id"}], "[0].id"),
        ([ticket("t-1"), "not a ticket"], "[1]"),
    ],
)
def test_ticketing_rejects_a_bad_ticket_naming_index_and_field(
    ticketing: TicketingSimulator, batch: list[Any], field: str
) -> None:
    response = upsert(ticketing, batch)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == field
    assert field in error["message"]
    assert ticketing.tickets() == []  # the valid first ticket was not stored either


@pytest.mark.parametrize("batch", [{"tickets": []}, [ticket(f"t-{n}") for n in range(101)]])
def test_ticketing_rejects_a_batch_that_is_not_an_array_of_at_most_100(
    ticketing: TicketingSimulator, batch: Any
) -> None:
    response = upsert(ticketing, batch)

    assert response.status_code == 400
    assert ticketing.tickets() == []


def test_ticketing_accepts_exactly_100_tickets(ticketing: TicketingSimulator) -> None:
    response = upsert(ticketing, [ticket(f"t-{n}") for n in range(100)])

    assert response.json()["created"] == 100


def test_ticketing_sim_tickets_can_be_cleared(ticketing: TicketingSimulator) -> None:
    upsert(ticketing, [ticket("t-1")])

    assert sim_call(ticketing, "DELETE", "/_sim/tickets").status_code == 204

    assert sim_call(ticketing, "GET", "/_sim/tickets").json() == []


def test_ticketing_faults_use_the_shared_injector(ticketing: TicketingSimulator, sleeps: list[float]) -> None:
    ticketing.add_fault(status=503, retry_after=3, latency_ms=100, count=1)

    faulted = upsert(ticketing, [ticket("t-1")])
    retried = upsert(ticketing, [ticket("t-1")])

    assert faulted.status_code == 503
    assert faulted.headers["Retry-After"] == "3"
    assert faulted.json()["error"]["code"] == "ServiceUnavailable"
    assert sleeps == [0.1]
    assert retried.json()["created"] == 1
    assert [entry["status"] for entry in ticketing.requests()] == [503, 200]


def test_ticketing_records_webhooks_posted_under_hooks(ticketing: TicketingSimulator) -> None:
    first = sim_call(
        ticketing, "POST", "/hooks/dtmf-audit", json={"n": 1}, headers={"Idempotency-Key": "k-1"}
    )
    sim_call(ticketing, "POST", "/hooks/other", json={"n": 2})

    assert first.status_code == 204  # no API key: a webhook receiver takes whoever is configured
    [hook] = ticketing.hooks("dtmf-audit")
    assert (hook["hook"], hook["body"], hook["headers"]["idempotency-key"]) == ("dtmf-audit", {"n": 1}, "k-1")
    assert [h["body"] for h in ticketing.hooks()] == [{"n": 1}, {"n": 2}]
    assert sim_call(ticketing, "GET", "/_sim/hooks?name=other").json()[0]["body"] == {"n": 2}
    assert ticketing.tickets() == []


def test_ticketing_webhooks_can_be_faulted(ticketing: TicketingSimulator) -> None:
    ticketing.add_fault(status=503, count=1, path_prefix="/hooks/")

    assert sim_call(ticketing, "POST", "/hooks/dtmf-audit", json={}).status_code == 503
    assert sim_call(ticketing, "POST", "/hooks/dtmf-audit", json={}).status_code == 204
    assert len(ticketing.hooks()) == 1
