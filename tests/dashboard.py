"""The dashboard's custom-metric queries, read from template.yaml, for tests that check them
against the EMF a workflow emits (a SEARCH schema matches only its exact dimension set)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from local.template import load_template

NAMESPACE = "CxoneRelay"
# Emitted by Powertools itself, per function; not part of the relay's own story.
POWERTOOLS_METRICS = frozenset({"ColdStart"})
_SEARCH = re.compile(r"SEARCH\('\{([^}]*)\}\s*MetricName=\"(\w+)\"")

Query = tuple[str, frozenset[str]]


def dashboard_queries() -> set[Query]:
    """(metric name, dimension names) of every SEARCH over our namespace on the dashboard."""
    body = load_template().resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    document = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))
    queries = set()
    for widget in document["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            for item in row:
                match = _SEARCH.search(item.get("expression", "")) if isinstance(item, dict) else None
                if match:
                    namespace, *dimensions = [part.strip() for part in match.group(1).split(",")]
                    if namespace == NAMESPACE:
                        queries.add((match.group(2), frozenset(dimensions)))
    return queries


def assert_matches_dashboard(emitted: Iterable[tuple[str, dict[str, str]]]) -> None:
    """Every metric emitted has its exact dimension set on the dashboard, and every dashboard query
    for those metric names matches something emitted."""
    seen = {(name, frozenset(dims)) for name, dims in emitted if name not in POWERTOOLS_METRICS}
    assert seen, "nothing was emitted"
    assert all({"service", "stack"} <= dims for _, dims in seen), seen
    names = {name for name, _ in seen}
    queries = {query for query in dashboard_queries() if query[0] in names}
    assert queries - seen == set(), "the dashboard asks for dimension sets nothing emits"
    assert seen - queries == set(), "emitted metrics the dashboard does not show"
