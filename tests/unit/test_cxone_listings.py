"""DFO listings as the CXone models read and ask for them: filter names from the endpoints module
(as NICE's SDK spells them), contacts and messages parsed defensively."""

from __future__ import annotations

from datetime import UTC, date, datetime

from cxone_relay.platform.cxone.models import ContactQuery, DigitalContact, DigitalMessage, MessageQuery


def test_a_contact_query_spells_filters_as_the_sdk_does():
    query = ContactQuery(
        channels=("fb_1", "wa_2"),
        statuses=("new", "open"),
        date_from=date(2025, 12, 10),
        date_to=date(2026, 3, 10),
    )
    assert query.filters() == {
        "channel[]": ["fb_1", "wa_2"],
        "status[]": ["new", "open"],
        "date[from]": "2025-12-10",
        "date[to]": "2026-03-10",
        "sorting": "updatedAt",
        "sortingType": "asc",
    }


def test_a_contact_query_leaves_out_what_it_does_not_set():
    assert ContactQuery(sort_by=None).filters() == {}
    assert ContactQuery(sort_by="createdAt", ascending=False).filters() == {
        "sorting": "createdAt",
        "sortingType": "desc",
    }


def test_a_message_query_asks_for_the_messages_of_given_contacts():
    assert MessageQuery(("c-1", "c-2")).filters() == {"contactId[]": ["c-1", "c-2"], "direction": "inbound"}
    assert MessageQuery(("c-1",), direction=None).filters() == {"contactId[]": ["c-1"]}


def test_a_listed_contact_is_read_with_aware_utc_times():
    contact = DigitalContact.from_listing(
        {
            "id": "c-1",
            "channelId": "fb_1",
            "status": "open",
            "subject": "Order",
            "body": "text",
            "preview": "latest",
            "createdAt": "2026-03-10T09:00:00.123Z",
            "updatedAt": "2026-03-10T11:00:00+02:00",
        }
    )
    assert contact == DigitalContact(
        id="c-1",
        channel_id="fb_1",
        status="open",
        subject="Order",
        body="text",
        preview="latest",
        created_at=datetime(2026, 3, 10, 9, 0, 0, 123000, tzinfo=UTC),
        updated_at=datetime(2026, 3, 10, 9, 0, tzinfo=UTC),
    )


def test_a_contact_without_one_of_its_times_takes_the_other():
    only_created = DigitalContact.from_listing({"id": 7, "createdAt": "2026-03-10T09:00:00"})
    status_only = DigitalContact.from_listing(
        {"id": "c", "createdAt": "2026-03-10T09:00:00Z", "statusUpdatedAt": "2026-03-10T10:00:00Z"}
    )
    only_updated = DigitalContact.from_listing({"id": "c", "updatedAt": "2026-03-10T10:00:00Z"})

    assert only_created is not None and only_created.id == "7"
    assert only_created.created_at == only_created.updated_at == datetime(2026, 3, 10, 9, tzinfo=UTC)
    assert status_only is not None and status_only.updated_at == datetime(2026, 3, 10, 10, tzinfo=UTC)
    assert only_updated is not None and only_updated.created_at == datetime(2026, 3, 10, 10, tzinfo=UTC)
    assert (only_updated.channel_id, only_updated.subject, only_updated.body) == (None, None, None)


def test_a_contact_with_no_id_or_no_readable_time_is_not_read():
    assert DigitalContact.from_listing({"createdAt": "2026-03-10T09:00:00Z"}) is None
    assert DigitalContact.from_listing({"id": "", "createdAt": "2026-03-10T09:00:00Z"}) is None
    assert DigitalContact.from_listing({"id": True, "createdAt": "2026-03-10T09:00:00Z"}) is None
    assert DigitalContact.from_listing({"id": "c", "createdAt": "last tuesday"}) is None
    assert DigitalContact.from_listing({"id": "c", "updatedAt": 1773133200}) is None


def test_a_listed_message_gives_its_text_and_whose_it_is():
    message = DigitalMessage.from_listing(
        {
            "id": "m-1",
            "contactId": "c-1",
            "direction": "inbound",
            "createdAt": "2026-03-10T09:00:00Z",
            "messageContent": {"type": "TEXT", "payload": {"text": "Hi"}},
        }
    )
    assert message == DigitalMessage("m-1", "c-1", "inbound", datetime(2026, 3, 10, 9, tzinfo=UTC), "Hi")


def test_a_message_without_text_or_id_reads_as_such():
    blank = DigitalMessage.from_listing({"id": 5, "caseId": 9, "messageContent": {"payload": {"text": " "}}})
    assert blank == DigitalMessage("5", "9", None, None, None)
    assert DigitalMessage.from_listing({"id": "m", "messageContent": "text"}) == DigitalMessage(
        "m", None, None, None, None
    )
    assert DigitalMessage.from_listing({"messageContent": {}}) is None
    assert DigitalMessage.from_listing({"id": False}) is None
