"""Checkpoints in the state table: how far a scheduled pull has got, moved forward only.

A checkpoint is a position, the ids already handled at exactly that position (several items can
share one), and a version. Positions are text that sorts in time order (ISO 8601 UTC timestamps
of one fixed format). A save names the version it read and is conditional on it, and on not
moving the position backwards: a run that read an older checkpoint writes nothing and learns so,
so two runs never interleave their progress and an older run never undoes a newer one's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cxone_relay.platform.data import keys
from cxone_relay.platform.data.dynamo import DynamoTable


@dataclass(frozen=True)
class Checkpoint:
    position: str
    seen_at_position: tuple[str, ...] = ()
    version: int = 0  # 0: never saved
    saved_at: str | None = None


class CheckpointStore:
    def __init__(self, table: DynamoTable, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    def load(self, name: str) -> Checkpoint | None:
        item = self._table.get(keys.checkpoint(name))
        if item is None:
            return None
        return Checkpoint(
            position=str(item["checkpoint_position"]),
            seen_at_position=tuple(str(seen) for seen in item.get("seen_at_position") or ()),
            version=int(item["checkpoint_version"]),
            saved_at=str(item["saved_at"]) if item.get("saved_at") else None,
        )

    def save(
        self, name: str, position: str, seen_at_position: Iterable[str], *, expected_version: int
    ) -> Checkpoint | None:
        """Write the next version; None (and nothing written) if the stored checkpoint is no
        longer `expected_version`, or is further on than `position`."""
        saved = Checkpoint(
            position=position,
            seen_at_position=tuple(sorted(set(seen_at_position))),
            version=expected_version + 1,
            saved_at=datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="milliseconds"),
        )
        item = {
            **keys.checkpoint(name),
            "checkpoint_position": saved.position,
            "seen_at_position": list(saved.seen_at_position),
            "checkpoint_version": saved.version,
            "saved_at": saved.saved_at,
        }
        if expected_version == 0:
            written = self._table.put(item, condition="attribute_not_exists(pk)")
        else:
            written = self._table.put(
                item,
                condition="checkpoint_version = :expected AND checkpoint_position <= :position",
                expected=expected_version,
                position=position,
            )
        return saved if written else None
