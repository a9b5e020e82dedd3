"""The base of every model a client's request is validated against.

Strict types: JSON `true`/`false` are the only booleans ("yes", 1 and "1" are refused), a number is
never a string and a string never a number. Clean text: no string anywhere in a request may hold a
NUL, another C0 control character (tab, CR and LF excepted) or a lone surrogate. Such text cannot
be stored (DynamoDB and most JSON encoders refuse lone surrogates), so it is refused at the door,
naming the field, instead of failing half-way through a write.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

# C0 controls except \t \n \r, DEL, and the surrogate range (only ever lone in a Python str).
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
UNSAFE_TEXT = "must not contain NUL, control characters or lone surrogates"


def unsafe_text(value: Any) -> bool:
    """Whether a string, or any string inside lists and objects, holds unsafe characters.
    Iterative, so a deeply nested value cannot exhaust the stack."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _UNSAFE_CHARACTERS.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class RequestModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True, str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _clean_text(cls, value: Any) -> Any:
        if unsafe_text(value):
            raise ValueError(UNSAFE_TEXT)
        return value
