"""Create template.yaml's stateful resources in an AWS emulation (moto, in-process or server).

Queues (with their redrive policies), tables (keys, indexes, TTL), secrets (local development
values) and SSM parameters come from the template itself; a second, hand-written schema would
drift. Returns a Resolver that knows every physical name, for environment variables and routes.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import boto3

from local.template import LOCAL_REGION, LOCAL_STACK_NAME, Resolver, Template, load_template

STACK_NAME = LOCAL_STACK_NAME


@dataclass
class Provisioned:
    template: Template
    resolver: Resolver
    queues: dict[str, str] = field(default_factory=dict)  # logical id -> queue url
    tables: dict[str, str] = field(default_factory=dict)  # logical id -> table name
    secrets: dict[str, str] = field(default_factory=dict)  # logical id -> secret arn

    def function_environment(self, function_id: str) -> dict[str, str]:
        variables = self.template.function_properties(function_id)["Environment"]["Variables"]
        return {name: str(self.resolver.resolve(value)) for name, value in variables.items()}

    def dead_letter_queue_of(self, queue_id: str) -> str | None:
        policy = self.template.resources[queue_id].get("Properties", {}).get("RedrivePolicy")
        if not policy:
            return None
        target = policy.get("deadLetterTargetArn")
        if isinstance(target, dict) and "Fn::GetAtt" in target:
            arg = target["Fn::GetAtt"]
            return str(arg[0] if isinstance(arg, list) else arg.split(".")[0])
        return None


def _physical_name(logical_id: str) -> str:
    return f"{STACK_NAME}-{logical_id}"


def provision(
    template: Template | None = None,
    *,
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
    secret_values: dict[str, str] | None = None,
    extra_secrets: dict[str, str] | None = None,
) -> Provisioned:
    """Create every queue, table, secret and SSM parameter of the template.

    `secret_values` maps a secret's logical id to the local value it should hold (CXone simulator
    credentials, the ticketing key); secrets not named get their template value or a random one.
    `extra_secrets` (name -> value) are secrets a deployment creates outside the stack, such as
    the credentials of a second CXone environment.
    """
    template = template or load_template()
    session = session or boto3.Session(region_name=LOCAL_REGION)
    clients: dict[str, Any] = {}

    # Typed Any on purpose: boto3-stubs types clients per literal service name only.
    make_client: Any = session.client

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = make_client(service, region_name=LOCAL_REGION, endpoint_url=endpoint_url)
        return clients[service]

    refs: dict[str, str] = {}
    attributes: dict[tuple[str, str], str] = {}
    resolver = Resolver(template, refs, attributes, STACK_NAME)
    result = Provisioned(template=template, resolver=resolver)

    # Dead-letter queues first: a source queue's redrive policy names its DLQ's ARN.
    queues = template.resources_of_type("AWS::SQS::Queue")
    ordered = sorted(queues, key=lambda lid: "RedrivePolicy" in queues[lid].get("Properties", {}))
    for logical_id in ordered:
        _create_queue(client("sqs"), logical_id, queues[logical_id], resolver, result)

    for logical_id, resource in template.resources_of_type("AWS::DynamoDB::Table").items():
        _create_table(client("dynamodb"), logical_id, resource, resolver, result)

    for logical_id, resource in template.resources_of_type("AWS::SecretsManager::Secret").items():
        _create_secret(client("secretsmanager"), logical_id, resource, resolver, result, secret_values or {})

    for name, value in (extra_secrets or {}).items():
        client("secretsmanager").create_secret(Name=name, SecretString=value)

    for logical_id, resource in template.resources_of_type("AWS::SSM::Parameter").items():
        props = resolver.resolve(resource.get("Properties", {}))
        name = props.get("Name") or f"/{STACK_NAME}/{logical_id}"
        client("ssm").put_parameter(
            Name=name, Value=props["Value"], Type=props.get("Type", "String"), Overwrite=True
        )
        refs[logical_id] = name
    return result


def _create_queue(
    sqs: Any, logical_id: str, resource: dict[str, Any], resolver: Resolver, result: Provisioned
) -> None:
    props = resolver.resolve(resource.get("Properties", {}))
    name = props.get("QueueName") or _physical_name(logical_id)
    attributes: dict[str, str] = {}
    for key in (
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "ReceiveMessageWaitTimeSeconds",
    ):
        if key in props:
            attributes[key] = str(props[key])
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    if props.get("SqsManagedSseEnabled"):
        attributes["SqsManagedSseEnabled"] = "true"
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    resolver.refs[logical_id] = url
    resolver.attributes[(logical_id, "Arn")] = arn
    resolver.attributes[(logical_id, "QueueName")] = name
    resolver.attributes[(logical_id, "QueueUrl")] = url
    result.queues[logical_id] = url


def _create_table(
    ddb: Any, logical_id: str, resource: dict[str, Any], resolver: Resolver, result: Provisioned
) -> None:
    props = resolver.resolve(resource.get("Properties", {}))
    name = props.get("TableName") or _physical_name(logical_id)
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(index_kind):
            request[index_kind] = props[index_kind]
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    description = ddb.create_table(**request)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and str(ttl.get("Enabled", "")).lower() == "true":
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
    resolver.refs[logical_id] = name
    resolver.attributes[(logical_id, "Arn")] = description["TableArn"]
    result.tables[logical_id] = name


def _create_secret(
    sm: Any,
    logical_id: str,
    resource: dict[str, Any],
    resolver: Resolver,
    result: Provisioned,
    secret_values: dict[str, str],
) -> None:
    props = resolver.resolve(resource.get("Properties", {}))
    name = props.get("Name") or _physical_name(logical_id)
    if logical_id in secret_values:
        value = secret_values[logical_id]
    elif "SecretString" in props:
        value = props["SecretString"]
    else:
        generate = props.get("GenerateSecretString", {})
        length = int(generate.get("PasswordLength", 32))
        value = secrets.token_hex(length)[:length]
        if "GenerateStringKey" in generate:
            # As Secrets Manager does: the template's JSON with the generated value under the key.
            value = json.dumps(
                json.loads(generate.get("SecretStringTemplate") or "{}")
                | {generate["GenerateStringKey"]: value}
            )
    arn = sm.create_secret(Name=name, SecretString=value)["ARN"]
    resolver.refs[logical_id] = arn
    result.secrets[logical_id] = arn
