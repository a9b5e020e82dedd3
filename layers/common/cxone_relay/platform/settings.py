"""Settings parsed from the environment by pydantic models, once per container (cold start).

Every function builds the model it needs with `from_env()`; a missing or malformed variable
raises ConfigurationError naming the variable, so a bad deploy fails on its first invocation
rather than half-way through a batch.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from cxone_relay.platform.errors import ConfigurationError


def _json_if_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at position {exc.pos})") from exc
    return value


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            return _json_if_text(stripped)
        return [item.strip() for item in stripped.split(",") if item.strip()]
    return value


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_http_url)]
JsonList = BeforeValidator(_json_if_text)
CommaList = BeforeValidator(_comma_list)


class CxoneEnvironment(BaseModel):
    """One CXone tenant or business unit the relay talks to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
    grant_type: Literal["password", "client_credentials"] = "password"
    auth_url: HttpUrl = "https://cxone.niceincontact.com"
    # Overrides for API base discovery (a private endpoint, or the local simulator).
    api_base_url: HttpUrl | None = None
    dfo_base_url: HttpUrl | None = None
    tenant_id: str | None = None
    credentials_secret_arn: str | None = None
    dfo_channel_id: str | None = None
    dnc_group_id: str | None = None
    admin_api_version: str = Field(default="v27.0", pattern=r"^v\d+\.\d+$")


class EnvModel(BaseModel):
    """Base for settings models: fields are snake_case, variables are their UPPER_CASE names."""

    model_config = ConfigDict(frozen=True, extra="ignore", alias_generator=str.upper, populate_by_name=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        source = os.environ if environ is None else environ
        # An empty variable means "use the default": CloudFormation parameters cannot be unset.
        values = {key: value for key, value in source.items() if value != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
            )
            raise ConfigurationError(f"{cls.__name__} is invalid: {problems}") from None


class CoreSettings(EnvModel):
    """What every function needs: where audit, state and idempotency live, and PII handling."""

    audit_table: str
    state_table: str
    idempotency_table: str
    audit_retention_days: int = Field(default=400, ge=1, le=3650)
    pii_hash_key_secret_arn: str
    default_phone_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    metrics_stack: str | None = None


class CxoneSettings(CoreSettings):
    """Functions that call CXone: environments, token cache and HTTP behaviour."""

    cxone_environments: Annotated[list[CxoneEnvironment], JsonList] = Field(min_length=1)
    cxone_default_credentials_secret_arn: str
    cxone_token_parameter_prefix: str = Field(pattern=r"^/[A-Za-z0-9_./-]+[^/]$")
    token_refresh_margin_seconds: int = Field(default=300, ge=0, le=1800)
    cxone_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    cxone_max_attempts: int = Field(default=5, ge=1, le=10)

    def environment(self, name: str) -> CxoneEnvironment:
        for environment in self.cxone_environments:
            if environment.name == name:
                return environment
        raise ConfigurationError(f"no CXone environment named {name!r} in CXONE_ENVIRONMENTS")

    @property
    def primary_environment(self) -> CxoneEnvironment:
        return self.cxone_environments[0]


class ConsumerSettings(CoreSettings):
    """Functions that consume a queue: where records that can never succeed go at once."""

    dead_letter_queue_url: str
