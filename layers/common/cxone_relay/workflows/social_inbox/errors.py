"""What stops the social inbox workflow in a way only an operator can fix."""

from __future__ import annotations


class CorruptCheckpoint(RuntimeError):
    """The stored checkpoint cannot be read as a time: delete it (the next run starts at the
    retention limit, and re-upserts what it finds: upserts are idempotent by external id)."""
