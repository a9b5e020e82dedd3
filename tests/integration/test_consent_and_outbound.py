"""The two workflows meet in the consent ledger: an opt-out taken by the consent API stops outbound
messages to that number from the moment it is answered, before its DNC sync has run."""

from __future__ import annotations

from datetime import UTC, datetime

from cxone_relay.platform.data.consent import ConsentStatus
from tests.integration.consent_harness import ConsentHarness
from tests.integration.outbound_harness import Clock, OutboundHarness

RECIPIENT = "+12125551234"
OUR_NUMBER = "+14155550100"
NOON_NEW_YORK = datetime(2027, 1, 15, 17, tzinfo=UTC)  # inside every quiet-hours window of the number
# Before any clock a test can run under, so the consent API's opt-out (taken now) is the later change.
OPTED_IN_AT = datetime(2025, 1, 1, tzinfo=UTC)


def campaign(**fields: object) -> dict:
    return {"to": [RECIPIENT], "from": OUR_NUMBER, "text": "Spring sale", "campaignId": "spring"} | fields


def test_an_opt_out_through_the_consent_api_refuses_later_sends_and_dry_runs(
    stack, cxone_sim, ticketing_sim, monkeypatch
):
    outbound = OutboundHarness(stack, cxone_sim, ticketing_sim, monkeypatch, Clock(NOON_NEW_YORK))
    consent = ConsentHarness(stack, cxone_sim, monkeypatch)
    outbound.consent(RECIPIENT, ConsentStatus.OPTED_IN, OPTED_IN_AT)
    status, before = outbound.send(campaign(dryRun=True))
    assert (status, [m["to"] for m in before["messages"]], before["refused"]) == (200, [RECIPIENT], [])

    # As the number was typed on a web form: national format, normalised by the consent API.
    assert consent.opt_out("(212) 555-1234", source="web", region="US") == (
        202,
        {"status": "queued", "phone": RECIPIENT},
    )

    status, dry_run = outbound.send(campaign(dryRun=True))
    assert (status, dry_run["messages"], dry_run["refused"]) == (
        200,
        [],
        [{"to": RECIPIENT, "reasons": ["opted-out"]}],
    )
    status, answer = outbound.send(campaign())
    assert (status, answer["status"], answer["refused"]) == (
        202,
        "refused",
        [{"to": RECIPIENT, "reasons": ["opted-out"]}],
    )
    assert outbound.depth() == 0
    assert outbound.sent() == []
