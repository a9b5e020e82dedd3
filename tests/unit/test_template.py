"""What template.yaml promises a deployment, checked on the template itself."""

from __future__ import annotations

import json
from typing import Any

from local.template import TEMPLATE_PATH, expand_for_each, load_template

TEMPLATE = load_template()
RESOURCES = TEMPLATE.resources
NAME_PROPERTIES = (
    "FunctionName",
    "QueueName",
    "LogGroupName",
    "AlarmName",
    "LayerName",
    "Name",
    "DashboardName",
)


def _text(value: Any) -> str:
    return json.dumps(value)


def test_parameters_a_deployment_must_set_have_no_placeholder_default():
    parameters = TEMPLATE.body["Parameters"]
    assert "Default" not in parameters["CxoneEnvironments"]
    assert parameters["TicketingBaseUrl"]["Default"] == ""  # optional: empty means no ticketing
    assert "example.com" not in TEMPLATE_PATH.read_text()


def test_every_name_starts_with_the_stack_name_so_two_stacks_share_an_account():
    named = 0
    for logical_id, resource in RESOURCES.items():
        for prop in NAME_PROPERTIES:
            value = resource.get("Properties", {}).get(prop)
            if value is None or (prop == "Name" and resource["Type"] == "AWS::Serverless::Api"):
                continue
            named += 1
            assert "${AWS::StackName}" in _text(value) or value == {"Ref": "AWS::StackName"}, logical_id
            assert "${Stage}" not in _text(value), logical_id
    assert named > 10


def test_the_retained_pii_key_has_no_fixed_name_so_a_redeploy_after_delete_works():
    secret = RESOURCES["PiiHashKeySecret"]
    assert secret["DeletionPolicy"] == "Retain"
    assert "Name" not in secret["Properties"]


def test_every_queue_consumer_has_a_dlq_partial_failures_a_concurrency_cap_and_its_own_dlq_path():
    sources = TEMPLATE.queue_sources()
    assert sources
    for source in sources:
        queue = RESOURCES[source.queue_id]["Properties"]
        dlq_id = queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert source.report_batch_item_failures and source.maximum_concurrency
        function = RESOURCES[source.function_id]["Properties"]
        assert function["Environment"]["Variables"]["DEAD_LETTER_QUEUE_URL"] == {"Ref": dlq_id}
        allowed = [
            p["SQSSendMessagePolicy"]["QueueName"]
            for p in function["Policies"]
            if "SQSSendMessagePolicy" in p
        ]
        assert {"Fn::GetAtt": f"{dlq_id}.QueueName"} in allowed or {
            "Fn::GetAtt": [dlq_id, "QueueName"]
        } in allowed


def test_queue_visibility_is_at_least_six_times_the_consumer_timeout():
    for source in TEMPLATE.queue_sources():
        timeout = int(TEMPLATE.function_properties(source.function_id)["Timeout"])
        settings = TEMPLATE.body["Mappings"]["QueueSettings"][source.queue_id.removesuffix("Queue")]
        assert int(settings["VisibilityTimeout"]) >= 6 * timeout


def test_for_each_stamps_one_block_per_item_and_substitutes_the_identifier():
    body = {
        "Resources": {
            "Fn::ForEach::Things": [
                "Thing",
                ["Alpha", "Beta-2"],
                {
                    "${Thing}Queue": {"Properties": {"Name": {"Fn::Sub": "${AWS::StackName}-${Thing}"}}},
                    "&{Thing}Alarm": {
                        "Properties": {"Of": {"Fn::GetAtt": [{"Fn::Sub": "${Thing}Queue"}, "Arn"]}}
                    },
                    "${Thing}Ref": {"Properties": {"Value": {"Ref": "Thing"}}},
                },
            ]
        },
        "Transform": ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"],
    }
    expanded = expand_for_each(body)
    resources = expanded["Resources"]
    assert set(resources) == {
        "AlphaQueue",
        "Beta-2Queue",
        "AlphaAlarm",
        "Beta2Alarm",
        "AlphaRef",
        "Beta-2Ref",
    }
    assert resources["AlphaQueue"]["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-Alpha"}
    assert resources["Beta2Alarm"]["Properties"]["Of"] == {"Fn::GetAtt": ["Beta-2Queue", "Arn"]}
    assert resources["AlphaRef"]["Properties"]["Value"] == "Alpha"
    assert expanded["Transform"] == "AWS::Serverless-2016-10-31"
