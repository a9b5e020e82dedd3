"""Short leases in the state table: who may do something right now, across containers.

A lease is a conditional put that succeeds when nobody holds it, the holder's time is up, or we
already hold it; it lapses by itself, so a holder that crashes delays the others by at most the
lease, and never blocks them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from cxone_relay.platform.data import keys
from cxone_relay.platform.data.dynamo import DynamoTable

# Lease items are cleaned up by the table's TTL long after they lapse.
_TTL_SECONDS = 3600


class Lease:
    def __init__(
        self,
        table: DynamoTable,
        purpose: str,
        lease_seconds: float,
        clock: Callable[[], float] = time.time,
        holder: str | None = None,
    ) -> None:
        self._table = table
        self._purpose = purpose
        self.lease_seconds = lease_seconds
        self._clock = clock
        self.holder = holder or uuid.uuid4().hex

    def acquire(self, name: str) -> bool:
        now = self._clock()
        return self._table.put(
            {
                **keys.lease(self._purpose, name),
                "holder": self.holder,
                "lease_until": now + self.lease_seconds,
                "expires_at": int(now + _TTL_SECONDS),
            },
            condition="attribute_not_exists(pk) OR lease_until < :now OR holder = :me",
            now=now,
            me=self.holder,
        )

    def release(self, name: str) -> bool:
        return self._table.delete(keys.lease(self._purpose, name), condition="holder = :me", me=self.holder)
