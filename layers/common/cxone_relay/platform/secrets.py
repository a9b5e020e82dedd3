"""Secrets Manager reads, cached per container by Powertools for SECRET_MAX_AGE_SECONDS.

What is read on each use (CXone credentials on each token fetch, the ticketing key on each batch)
picks up a rotated value within that time, without a redeploy. The PII hash key is read once per
container on purpose: it must never rotate (a new key orphans every hashed key already stored).
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from cxone_relay.platform.errors import ConfigurationError
from cxone_relay.platform.redaction import register_secret

SECRET_MAX_AGE_SECONDS = 300


def _use_shared_session() -> None:
    """Powertools' default secrets provider builds a boto3 Session of its own, which loads the
    endpoint rules a second time: about 30 ms of CPU in every cold start. Its client comes from
    the default session instead, the one every other client of the container uses. (Powertools'
    clear_caches() drops the provider, and the next read puts a new one back.)"""
    if "secrets" not in DEFAULT_PROVIDERS:
        DEFAULT_PROVIDERS["secrets"] = parameters.SecretsProvider(boto3_client=boto3.client("secretsmanager"))


def secret_text(arn: str) -> str:
    _use_shared_session()
    value = parameters.get_secret(arn, max_age=SECRET_MAX_AGE_SECONDS)
    text = value.decode() if isinstance(value, bytes) else str(value)
    register_secret(text)
    return text


def secret_json(arn: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    _use_shared_session()
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
