"""Reading what the shared logger wrote: one line at a time, as JSON, without the context every
line carries (so a test compares what one call logged, whole)."""

from __future__ import annotations

import json
from typing import Any

# What the logger puts on every line, whoever logs it.
LOG_CONTEXT_KEYS = frozenset(
    {
        "location",
        "timestamp",
        "service",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "correlation_id",
        "xray_trace_id",
        "sampling_rate",
    }
)


def logged_lines(output: str, message: str) -> list[dict[str, Any]]:
    """Each line logged with this message: its level, message and the keys that call added."""
    lines = [json.loads(line) for line in output.splitlines()]
    return [
        {key: value for key, value in line.items() if key not in LOG_CONTEXT_KEYS}
        for line in lines
        if line["message"] == message
    ]
