"""The state table's key scheme, written down once.

One table (pk/sk) holds every kind of state; the first segment of pk says which kind. No key holds
a phone number: numbers appear only as a keyed hash (redaction.PhoneHasher).

| kind              | pk                         | sk                         |
|-------------------|----------------------------|----------------------------|
| consent, current  | consent#<phone hash>       | current                    |
| consent, history  | consent#<phone hash>       | entry#<when>#<reference>   |
| lease             | lease#<purpose>#<name>     | lease                      |
| checkpoint        | checkpoint#<name>          | checkpoint                 |
| message status    | message#<message id>       | status                     |
| held message      | held#<minute it is due>    | <message id>               |
| DNC sync          | dnc#<phone hash>           | env#<environment>          |
| DNC call          | dnc-call#<content key>     | env#<environment>          |

Held messages are filed under the UTC minute they may go (YYYY-MM-DDTHH:MM), so the release
sweep reads one partition per minute, in order, and never scans.

A DNC sync item says a number is in one CXone environment's DNC group (and since when); a DNC
call item counts the answers with failed records one call's content has had in one environment.
The content key is a digest of keyed phone hashes, so it holds no number either.
"""

from __future__ import annotations

Key = dict[str, str]

CONSENT_CURRENT = "current"
CONSENT_ENTRY_PREFIX = "entry#"
LEASE = "lease"
CHECKPOINT = "checkpoint"
MESSAGE_STATUS = "status"
HELD_PREFIX = "held#"
DNC_ENVIRONMENT_PREFIX = "env#"


def consent_partition(phone_hash: str) -> str:
    return f"consent#{phone_hash}"


def consent_current(phone_hash: str) -> Key:
    return {"pk": consent_partition(phone_hash), "sk": CONSENT_CURRENT}


def consent_entry(phone_hash: str, when: str, reference: str) -> Key:
    return {"pk": consent_partition(phone_hash), "sk": f"{CONSENT_ENTRY_PREFIX}{when}#{reference}"}


def lease(purpose: str, name: str) -> Key:
    return {"pk": f"lease#{purpose}#{name}", "sk": LEASE}


def checkpoint(name: str) -> Key:
    return {"pk": f"checkpoint#{name}", "sk": CHECKPOINT}


def message_status(message_id: str) -> Key:
    return {"pk": f"message#{message_id}", "sk": MESSAGE_STATUS}


def held_partition(minute: str) -> str:
    return f"{HELD_PREFIX}{minute}"


def held_message(minute: str, message_id: str) -> Key:
    return {"pk": held_partition(minute), "sk": message_id}


def dnc_partition(phone_hash: str) -> str:
    return f"dnc#{phone_hash}"


def dnc_sync(phone_hash: str, environment: str) -> Key:
    return {"pk": dnc_partition(phone_hash), "sk": f"{DNC_ENVIRONMENT_PREFIX}{environment}"}


def dnc_call(content_key: str, environment: str) -> Key:
    return {"pk": f"dnc-call#{content_key}", "sk": f"{DNC_ENVIRONMENT_PREFIX}{environment}"}
