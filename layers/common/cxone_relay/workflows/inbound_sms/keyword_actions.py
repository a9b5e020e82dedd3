"""What a STOP, START or HELP does once it is off the queue: the consent ledger first (it is the
compliance record and must stand even if the reply fails), the opt-out on its way to DNC sync,
then one reply. Every CXone write is keyed on the message id, so a redelivery replies once."""

from __future__ import annotations

from cxone_relay.platform.cxone.client import CxoneClient, iso_milliseconds
from cxone_relay.platform.cxone.models import OutboundMessage
from cxone_relay.platform.data.audit import StageRecord
from cxone_relay.platform.data.consent import ConsentChange, ConsentLedger, ConsentStatus
from cxone_relay.platform.observability import count
from cxone_relay.platform.queueing import QueuePublisher
from cxone_relay.platform.transport import TimeBudget
from cxone_relay.workflows.inbound_sms.keywords import KeywordAction
from cxone_relay.workflows.inbound_sms.models import InboundOutcome, QueuedInboundSms

_CONSENT_OF = {KeywordAction.OPT_OUT: ConsentStatus.OPTED_OUT, KeywordAction.OPT_IN: ConsentStatus.OPTED_IN}


class KeywordResponder:
    def __init__(
        self,
        cxone: CxoneClient,
        ledger: ConsentLedger,
        opt_outs: QueuePublisher,
        replies: dict[KeywordAction, str],
    ) -> None:
        self._cxone = cxone
        self._ledger = ledger
        self._opt_outs = opt_outs
        self._replies = replies

    def respond(
        self, message: QueuedInboundSms, action: KeywordAction, audit: StageRecord, budget: TimeBudget
    ) -> InboundOutcome:
        status = _CONSENT_OF.get(action)
        if status is not None:
            applied = self._ledger.record(
                ConsentChange(message.sender, status, "sms", message.id, message.timestamp)
            )
            if not applied:
                # A newer change already stands (a STOP delivered after the START that followed
                # it): confirming or syncing this one would contradict the customer's latest word.
                audit.add("consent_superseded", status.value)
                return InboundOutcome(id=message.id, action=f"keyword:{action.value}:superseded")
            audit.add("consent_updated", status.value)
        if action is KeywordAction.OPT_OUT:
            # The DNC sync consumer dedupes numbers, so a redelivery re-publishing is harmless.
            self._opt_outs.publish(
                {
                    "phone": message.sender,
                    "source": "sms",
                    "reference": message.id,
                    "requested_at": iso_milliseconds(message.timestamp),
                },
                correlation_id=message.correlation_id,
            )
            audit.add("opt_out_queued", "ok")
        self._cxone.send_outbound(
            OutboundMessage(
                thread_id=message.sender, text=self._replies[action], recipients=[message.sender]
            ),
            idempotency_key=f"{message.id}:reply:{action.value}",
            budget=budget,
        )
        audit.add("reply_sent", "ok", keyword=action.value)
        count("KeywordActions", action=action.value)
        return InboundOutcome(id=message.id, action=f"keyword:{action.value}")
