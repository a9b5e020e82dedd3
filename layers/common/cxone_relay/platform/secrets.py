"""Secrets Manager reads, cached per container by Powertools for SECRET_MAX_AGE_SECONDS.

What is read on each use (CXone credentials on each token fetch, the ticketing key on each batch)
picks up a rotated value within that time, without a redeploy. The PII hash key is read once per
container on purpose: it must never rotate (a new key orphans every hashed key already stored).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities import parameters

from cxone_relay.platform.errors import ConfigurationError
from cxone_relay.platform.redaction import register_secret

SECRET_MAX_AGE_SECONDS = 300


def secret_text(arn: str) -> str:
    value = parameters.get_secret(arn, max_age=SECRET_MAX_AGE_SECONDS)
    text = value.decode() if isinstance(value, bytes) else str(value)
    register_secret(text)
    return text


def secret_json(arn: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    value = parameters.get_secret(arn, transform="json", max_age=SECRET_MAX_AGE_SECONDS)
    if not isinstance(value, dict):
        raise ConfigurationError(f"secret {arn} must hold a JSON object")
    missing = [key for key in required if not value.get(key)]
    if missing:
        raise ConfigurationError(f"secret {arn} is missing {', '.join(missing)}")
    for item in value.values():
        if isinstance(item, str):
            register_secret(item)
    return value
