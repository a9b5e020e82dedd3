"""Every API route, fuzzed from the published OpenAPI document (functions/openapi.json) against
the local stack over HTTP: no 5xx, no answer the document does not describe (status, content type,
body schema), and no request left hanging (one that gets no answer inside HANG_SECONDS fails, even
if it would have ended 4xx). How fast the answers are is `make bench`'s business, not a test's: a
loaded CI machine must not fail a correct API.

Bounded: a fixed number of examples per route, generated deterministically (derandomize), so CI
sees the same cases every run.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from local.openapi import DOCUMENT_PATH

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

EXAMPLES_PER_ROUTE = 300
HANG_SECONDS = 30.0

schema = schemathesis.openapi.from_path(DOCUMENT_PATH)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_ROUTE,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_route_answers_inside_its_document(case: Any, local_stack: dict[str, Any]) -> None:
    case.call_and_validate(
        base_url=local_stack["api"],
        headers={"x-api-key": local_stack["api_key"]},
        timeout=HANG_SECONDS,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            negative_data_rejection,
        ],
    )
