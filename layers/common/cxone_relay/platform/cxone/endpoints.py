"""Every CXone path in one place, so a deployment can correct one without touching logic.

Sources: ../shared/CXONE_API.md (NICE developer portal, nice-cxone-agent-sdk, public clients).
"""

from __future__ import annotations

from urllib.parse import quote

OPENID_CONFIGURATION = "/.well-known/openid-configuration"
CXONE_CONFIGURATION = "/.well-known/cxone-configuration"

DFO_STORE_MESSAGE = "/dfo/3.0/channels/{channel_id}/messages"
# How DFO answers a store whose idOnExternalPlatform it already has on the channel. Not in NICE's
# public docs (CXONE_API.md): 409 is our reading, kept here with the paths to be corrected in one place.
DFO_DUPLICATE_MESSAGE_STATUS = 409
DFO_SEND_OUTBOUND = "/dfo/3.0/channels/{channel_id}/outbound"
DFO_MESSAGE_STATUS = "/dfo/3.0/channels/{channel_id}/messages/{message_id}/status"
DFO_CONTACTS = "/dfo/3.0/contacts"
DFO_MESSAGES = "/dfo/3.0/messages"

# Listing filters, spelled as NICE's own SDK builds them (CXONE_API.md): list filters take
# brackets, the date window has day resolution (YYYY-MM-DD), sorting and scrollToken take none.
DFO_SCROLL_TOKEN = "scrollToken"  # noqa: S105 - a parameter name, not a secret
DFO_FILTER_STATUS = "status[]"
DFO_FILTER_CHANNEL = "channel[]"
DFO_FILTER_DIRECTION = "direction"
DFO_FILTER_DATE_FROM = "date[from]"
DFO_FILTER_DATE_TO = "date[to]"
DFO_DATE_FORMAT = "%Y-%m-%d"
DFO_SORTING = "sorting"
DFO_SORTING_TYPE = "sortingType"
DFO_SORT_BY_UPDATED = "updatedAt"
DFO_SORT_ASCENDING = "asc"
DFO_SORT_DESCENDING = "desc"
# NOT documented (CXONE_API.md lists only channel[], direction and scrollToken for /messages): our
# reading of how to ask the messages listing for the messages of given contacts (cases).
DFO_FILTER_CONTACT_ID = "contactId[]"
# NOT documented either: which time of a contact date[from]/date[to] filter on. We read it as
# updatedAt, the time we sort by; the relay also checks every contact's times on its own side,
# so a deployment that finds otherwise loses nothing it asked for, only paging efficiency.
DFO_DATE_FILTERED_FIELD = "updatedAt"

ADMIN_DNC_RECORDS = "/inContactAPI/services/{version}/dnc-groups/{group_id}/records"
AGENT_API_VERSION = "v23.0"
AGENT_SEND_DTMF = "/inContactAPI/services/{version}/agent-sessions/{session_id}/send-dtmf"
# How the Agent API answers for a session that has ended (the call hung up). Not in NICE's public
# docs (CXONE_API.md): 404 is our reading, kept here with the paths to be corrected in one place.
AGENT_SESSION_ENDED_STATUS = 404


def path(template: str, **params: str) -> str:
    """Fill a template, escaping every parameter as one path segment."""
    return template.format(**{key: quote(str(value), safe="") for key, value in params.items()})


def dfo_base_from_configuration(area: str, domain: str) -> str:
    """The DFO API host is derived from the tenant's area and domain."""
    return f"https://api-de-{area}.{domain}"
