"""Reading the social inbox from CXone: one page of digital contacts at a time (a scroll over the
configured channels and the window's days, oldest update first), then the customer's words of the
contacts a run will take, from the messages listing.

Contacts come sorted by updatedAt, ascending, so the checkpoint can follow them page by page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cxone_relay.platform.cxone.client import CxoneClient
from cxone_relay.platform.cxone.models import ContactQuery, DigitalContact, DigitalMessage, MessageQuery
from cxone_relay.platform.transport import TimeBudget
from cxone_relay.workflows.social_inbox.models import Conversation
from cxone_relay.workflows.social_inbox.window import PullWindow

INBOUND = "inbound"
_LAST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ContactPage:
    contacts: list[DigitalContact]
    # Items the listing served that cannot be read as a contact (no id, no time).
    unreadable: int
    scroll_token: str | None


class InboxReader:
    def __init__(self, cxone: CxoneClient, channels: Sequence[str]) -> None:
        self._cxone = cxone
        self._channels = tuple(channels)

    def page(self, window: PullWindow, budget: TimeBudget, scroll_token: str | None = None) -> ContactPage:
        """The first page of a new scroll over the window, or the next page of a scroll."""
        first_day, last_day = window.days
        query = ContactQuery(channels=self._channels, date_from=first_day, date_to=last_day)
        listing = self._cxone.list_contacts(query.filters(), budget, scroll_token=scroll_token)
        parsed = [DigitalContact.from_listing(item) for item in listing.items]
        contacts = [contact for contact in parsed if contact is not None]
        return ContactPage(contacts, len(parsed) - len(contacts), listing.scroll_token)

    def conversations(self, contacts: Sequence[DigitalContact], budget: TimeBudget) -> list[Conversation]:
        """The contacts with the customer's words: their inbound messages' text, oldest first, or
        the contact's body when it has no inbound text."""
        if not contacts:
            return []
        said = self._inbound_texts([contact.id for contact in contacts], budget)
        return [
            Conversation(
                id=contact.id,
                channel=contact.channel_id,
                subject=contact.subject,
                text="\n".join(said.get(contact.id, [])) or contact.body or "",
                created_at=contact.created_at,
                updated_at=contact.updated_at,
            )
            for contact in contacts
        ]

    def _inbound_texts(self, contact_ids: list[str], budget: TimeBudget) -> dict[str, list[str]]:
        wanted = set(contact_ids)
        messages: list[DigitalMessage] = []
        filters = MessageQuery(tuple(contact_ids), direction="inbound").filters()
        token: str | None = None
        while True:
            listing = self._cxone.list_messages(filters, budget, scroll_token=token)
            for item in listing.items:
                message = DigitalMessage.from_listing(item)
                # Checked here too: an agent's reply is not the customer's words, whatever was served.
                if (
                    message is not None
                    and message.direction == INBOUND
                    and message.contact_id in wanted
                    and message.text
                ):
                    messages.append(message)
            token = listing.scroll_token
            if token is None:
                break
        texts: dict[str, list[str]] = {}
        for message in sorted(messages, key=lambda m: m.created_at or _LAST):
            texts.setdefault(str(message.contact_id), []).append(str(message.text))
        return texts
