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


def test_the_inbox_pull_runs_on_a_configurable_schedule_with_retries_and_an_alarmed_dlq():
    function = RESOURCES["InboxPullFunction"]["Properties"]
    [event] = function["Events"].values()
    assert event["Type"] == "ScheduleV2"
    schedule = event["Properties"]
    assert schedule["ScheduleExpression"] == {"Ref": "InboxPullRate"}
    assert schedule["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    dlq_id = schedule["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert RESOURCES[dlq_id]["Type"] == "AWS::SQS::Queue"
    alarms = [r for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    dlq_name = RESOURCES[dlq_id]["Properties"]["QueueName"]
    assert any(a["Properties"]["Dimensions"] == [{"Name": "QueueName", "Value": dlq_name}] for a in alarms)
    # A failed run is not retried by Lambda: the next scheduled run resumes from the checkpoint.
    assert function["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    assert "InboxPullFunction" in [t.function_id for t in TEMPLATE.schedule_sources()]
    assert all(source.function_id != "InboxPullFunction" for source in TEMPLATE.queue_sources())


def test_a_functions_layers_are_the_global_ones_then_its_own_as_sam_merges_lists():
    assert TEMPLATE.function_properties("InboxPullFunction")["Layers"] == [
        {"Ref": "CommonLayer"},
        {"Ref": "LanguageLayer"},
        {"Ref": "SentimentLayer"},
    ]
    assert TEMPLATE.function_properties("DtmfApiFunction")["Layers"] == [{"Ref": "CommonLayer"}]
    # A scalar set in both is the function's own.
    assert TEMPLATE.function_properties("InboxPullFunction")["Timeout"] == 240


def test_the_inbox_pull_carries_its_heavy_layers_and_the_alarms_every_cxone_caller_has():
    function = RESOURCES["InboxPullFunction"]["Properties"]
    assert function["Layers"] == [{"Ref": "LanguageLayer"}, {"Ref": "SentimentLayer"}]
    assert RESOURCES["SentimentLayer"]["Properties"]["ContentUri"] == "layers/sentiment/"
    others = [
        lid
        for lid, resource in RESOURCES.items()
        if resource["Type"] == "AWS::Serverless::Function" and lid != "InboxPullFunction"
    ]
    sentiment = {"Ref": "SentimentLayer"}
    assert all(sentiment not in RESOURCES[lid]["Properties"].get("Layers", []) for lid in others)
    for alarm in ("InboxPullErrorsAlarm", "InboxPullThrottlesAlarm", "InboxPullCxoneFailuresAlarm"):
        assert RESOURCES[alarm]["Type"] == "AWS::CloudWatch::Alarm"
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "InboxPullLogGroup"}
    variables = function["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == "InboxPull"
    assert "IDEMPOTENCY_TTL_SECONDS" not in variables and "DEAD_LETTER_QUEUE_URL" not in variables
    # Least privilege: the state table for its checkpoint and leases, no wildcard resources.
    statements = [s for p in function["Policies"] if "Statement" in p for s in p["Statement"]]
    state = next(s for s in statements if s["Sid"] == "CheckpointAndLeases")
    assert state["Resource"] == {"Fn::GetAtt": "StateTable.Arn"} or state["Resource"] == {
        "Fn::GetAtt": ["StateTable", "Arn"]
    }
    assert all(s["Resource"] != "*" for s in statements)


def test_held_messages_are_released_every_minute_with_retries_an_alarmed_dlq_and_no_lambda_retry():
    function = RESOURCES["HeldMessageReleaseFunction"]["Properties"]
    [event] = function["Events"].values()
    schedule = event["Properties"]
    assert (event["Type"], schedule["ScheduleExpression"]) == ("ScheduleV2", "rate(1 minute)")
    assert schedule["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    dlq_id = schedule["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    dlq_name = RESOURCES[dlq_id]["Properties"]["QueueName"]
    alarms = [r for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert any(a["Properties"]["Dimensions"] == [{"Name": "QueueName", "Value": dlq_name}] for a in alarms)
    assert function["EventInvokeConfig"]["MaximumRetryAttempts"] == 0


def test_the_delivery_webhook_needs_no_api_key_and_reads_only_its_secrets():
    [route] = [r for r in TEMPLATE.api_routes() if r.function_id == "DeliveryWebhookFunction"]
    assert (route.path, route.method, route.api_key_required) == ("/sms/status", "POST", False)
    assert all(
        r.api_key_required for r in TEMPLATE.api_routes() if r.function_id != "DeliveryWebhookFunction"
    )
    secret = RESOURCES["DeliveryWebhookSecret"]["Properties"]["GenerateSecretString"]
    assert (secret["GenerateStringKey"], json.loads(secret["SecretStringTemplate"])) == (
        "current",
        {"previous": ""},
    )
    policies = RESOURCES["DeliveryWebhookFunction"]["Properties"]["Policies"]
    secrets = [
        p["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]
        for p in policies
        if "AWSSecretsManagerGetSecretValuePolicy" in p
    ]
    assert secrets == [{"Ref": "DeliveryWebhookSecret"}, {"Ref": "PiiHashKeySecret"}]


def test_the_outbound_consumer_is_capped_for_cxones_send_limit():
    [source] = [s for s in TEMPLATE.queue_sources() if s.function_id == "OutboundSmsConsumerFunction"]
    event = RESOURCES["OutboundSmsConsumerFunction"]["Properties"]["Events"]["OutboundSmsBatch"]["Properties"]
    assert event["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "OutboundMaxConcurrency"}
    assert source.maximum_concurrency == 5


def _statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for p in function["Policies"] if "Statement" in p for s in p["Statement"]]


def test_the_consent_api_serves_its_three_routes_with_an_api_key_and_least_privilege():
    function = RESOURCES["ConsentApiFunction"]["Properties"]
    routes = sorted(
        (r.method, r.path, r.api_key_required)
        for r in TEMPLATE.api_routes()
        if r.function_id == "ConsentApiFunction"
    )
    assert routes == [
        ("GET", "/consent/{phone}", True),
        ("POST", "/opt-in", True),
        ("POST", "/opt-out", True),
    ]
    assert function["Environment"]["Variables"] == {
        "POWERTOOLS_SERVICE_NAME": "ConsentApi",
        "OPT_OUT_QUEUE_URL": {"Ref": "OptOutQueue"},
    }
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "ConsentApiLogGroup"}
    state = next(s for s in _statements(function) if s["Sid"] == "ConsentLedger")
    assert state["Action"] == ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"]
    audit = next(s for s in _statements(function) if s["Sid"] == "AuditAppendOnly")
    assert audit["Action"] == ["dynamodb:PutItem", "dynamodb:BatchWriteItem"]
    # It never calls CXone: no token, no credentials, no idempotency table.
    policies = _text(function["Policies"])
    assert (
        "CxoneCredentialsSecret" not in policies
        and "ssm:" not in policies
        and "IdempotencyTable" not in policies
    )
    assert all(s["Resource"] != "*" for s in _statements(function))
    for alarm in ("ConsentApiErrorsAlarm", "ConsentApiThrottlesAlarm"):
        assert RESOURCES[alarm]["Type"] == "AWS::CloudWatch::Alarm"


def test_the_opt_out_consumer_reads_batches_of_100_in_10_seconds_and_calls_cxone_with_least_privilege():
    [source] = [s for s in TEMPLATE.queue_sources() if s.function_id == "OptOutConsumerFunction"]
    assert (source.queue_id, source.batch_size, source.batching_window_seconds) == ("OptOutQueue", 100, 10)
    assert source.report_batch_item_failures
    function = RESOURCES["OptOutConsumerFunction"]["Properties"]
    [event] = function["Events"].values()
    assert event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "ConsumerMaxConcurrency"}}
    variables = function["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == "OptOutConsumer"
    assert variables["CXONE_ENVIRONMENTS"] == {"Ref": "CxoneEnvironments"}
    assert "OPT_OUT_QUEUE_URL" not in variables and "TICKETING_BASE_URL" not in variables
    state = next(s for s in _statements(function) if s["Sid"] == "ConsentAndDncState")
    assert sorted(state["Action"]) == [
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
    ]
    assert all(s["Resource"] != "*" for s in _statements(function))
    for alarm in (
        "OptOutConsumerErrorsAlarm",
        "OptOutConsumerThrottlesAlarm",
        "OptOutConsumerCxoneFailuresAlarm",
    ):
        assert RESOURCES[alarm]["Type"] == "AWS::CloudWatch::Alarm"
    lag = RESOURCES["DncSyncLagAlarm"]["Properties"]
    assert (lag["MetricName"], lag["Threshold"]) == ("DncSyncLag", {"Ref": "DncMaxLagSeconds"})
    assert lag["Dimensions"][0] == {"Name": "service", "Value": "OptOutConsumer"}
    settings = TEMPLATE.body["Mappings"]["QueueSettings"]["OptOut"]
    assert int(settings["BacklogSeconds"]) <= 900  # an opt-out waiting a quarter of an hour is an incident


def test_api_requests_are_sampled_by_the_stage_rule_and_the_api_functions_follow_it():
    api_functions = {route.function_id for route in TEMPLATE.api_routes()}
    assert api_functions
    functions = [lid for lid, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"]
    globals_tracing = TEMPLATE.body["Globals"]["Function"]["Tracing"]
    for function_id in functions:
        tracing = RESOURCES[function_id]["Properties"].get("Tracing", globals_tracing)
        # An API function traces what API Gateway sampled; the rest sample with Lambda's own rule.
        assert tracing == ("PassThrough" if function_id in api_functions else "Active"), function_id
    assert RESOURCES["RelayApi"]["Properties"]["TracingEnabled"] is True
    rule = RESOURCES["ApiSamplingRule"]["Properties"]["SamplingRule"]
    assert "${RelayApi}/stages/${Stage}" in _text(rule["ResourceARN"])
    parameters = TEMPLATE.body["Parameters"]
    assert rule["ReservoirSize"] == {"Ref": "ApiTraceReservoir"}
    assert rule["FixedRate"] == {"Ref": "ApiTraceRate"}
    # No reservoir by default: a reservoir of 1 a second would trace nearly every request at 1M a month.
    assert parameters["ApiTraceReservoir"]["Default"] == 0
    assert 0 < parameters["ApiTraceRate"]["Default"] <= 0.05
