"""The OpenAPI document of the relay's API, generated from the API handlers' own resolvers.

Each API function's resolver knows its routes and pydantic models; this merges their paths into
one document. `make openapi` writes functions/openapi.json; a test fails if that copy is stale.
The handlers initialise at import (settings, secrets), so this runs them against moto in-process.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from local.template import ROOT, load_template

DOCUMENT_PATH = ROOT / "functions" / "openapi.json"
TITLE = "cxone-relay"
DESCRIPTION = (
    "Request endpoints of cxone-relay. Every request carries an API key in x-api-key, except the "
    "delivery webhook, which is signed (X-Signature); handlers validate, answer and queue the work; "
    "CXone is called by the queue consumers."
)


def build_document() -> dict[str, Any]:
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
    from moto import mock_aws

    from local.handlers import load_handler_module
    from local.provision import provision

    saved = dict(os.environ)
    os.environ.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "openapi",
            "AWS_SECRET_ACCESS_KEY": "openapi",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    document: dict[str, Any] = {}
    try:
        with mock_aws():
            provisioned = provision()
            template = load_template()
            for function_id in sorted({route.function_id for route in template.api_routes()}):
                os.environ.update(provisioned.function_environment(function_id))
                code_dir = Path(template.function_properties(function_id)["CodeUri"]).name
                module = load_handler_module(code_dir)
                schema = json.loads(
                    module.app.get_openapi_json_schema(
                        title=TITLE,
                        version=_version(),
                        description=DESCRIPTION,
                        security_schemes={"apiKey": APIKey(name="x-api-key", **{"in": APIKeyIn.header})},
                        security=[{"apiKey": []}],
                    )
                )
                document = _merge(document, schema)
        # A route without an API key (the signed delivery webhook) says so: no security scheme.
        for route in template.api_routes():
            if not route.api_key_required:
                document["paths"][route.path][route.method.lower()]["security"] = []
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return document


def _merge(into: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if not into:
        return schema
    into.setdefault("paths", {}).update(schema.get("paths", {}))
    into.setdefault("components", {}).setdefault("schemas", {}).update(
        schema.get("components", {}).get("schemas", {})
    )
    return into


def _version() -> str:
    import tomllib

    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def render() -> str:
    return json.dumps(build_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
