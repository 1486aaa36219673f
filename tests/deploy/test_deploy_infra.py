"""The infra template deploys into moto's CloudFormation with the schema the app expects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from chalice import Chalice
from moto import mock_aws

from app import app
from chalicelib import wiring
from chalicelib.domain.timeutil import now_ms
from chalicelib.services import access
from infra import operations
from infra.local import QueuePoller
from infra.tables import table_definition
from infra.template import (
    MAX_RECEIVE_COUNT,
    QUEUE_OF_DECORATOR,
    STAGES,
    infra_template,
    merge_template,
    policy_document,
    policy_path,
    render,
    resource_names,
)

REGION = "us-east-1"
# moto's CloudFormation skips some resource types (policies, alarms): those are checked statically.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS::")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield
        # Another suite may hold moto open for the whole worker (a nested mock_aws does not reset
        # it): delete this test's stacks, and so their resources, so the next deploy starts clean.
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        for stack in cloudformation.list_stacks()["StackSummaries"]:
            if stack["StackStatus"] != "DELETE_COMPLETE":
                cloudformation.delete_stack(StackName=stack["StackName"])
        # moto's stack deletion leaves the buckets: remove the stage buckets this test made.
        s3 = boto3.resource("s3", region_name=REGION)
        for bucket in s3.buckets.all():
            if bucket.name.startswith("roomtemp-data-"):
                bucket.object_versions.delete()
                bucket.delete()


def deploy(stage: str) -> dict[str, str]:
    """Create the stage's infra stack in moto; return its outputs."""
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(
        StackName=f"roomtemp-{stage}-infra", TemplateBody=json.dumps(infra_template(stage))
    )
    stack = cloudformation.describe_stacks(StackName=f"roomtemp-{stage}-infra")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def by_name(items: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return sorted(items, key=lambda item: item[key])


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_deployed_table_has_the_keys_of_the_one_table_definition(aws: None, stage: str) -> None:
    # Given the infra stack deployed
    outputs = deploy(stage)
    definition = table_definition()

    # When the table is described
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    table = dynamodb.describe_table(TableName=outputs["TableName"])["Table"]

    # Then its name, keys, attributes and index are exactly infra/table.json's
    assert table["TableName"] == resource_names(stage)["table"]
    assert table["KeySchema"] == definition["KeySchema"]
    assert by_name(table["AttributeDefinitions"], "AttributeName") == by_name(
        definition["AttributeDefinitions"], "AttributeName"
    )
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    [index] = table["GlobalSecondaryIndexes"]
    [expected] = definition["GlobalSecondaryIndexes"]
    assert index["IndexName"] == expected["IndexName"]
    assert index["KeySchema"] == expected["KeySchema"]
    assert index["Projection"] == expected["Projection"]
    assert table.get("DeletionProtectionEnabled", False) is (stage == "prod")


def test_template_table_turns_on_ttl_pitr_and_encryption() -> None:
    # moto's CloudFormation does not apply TimeToLiveSpecification: checked on the template
    properties = infra_template("dev")["Resources"]["Table"]["Properties"]

    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": table_definition()["TimeToLiveAttribute"],
        "Enabled": True,
    }
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}


@pytest.mark.slow
def test_deployed_bucket_and_queues_are_wired_for_ingestion(aws: None) -> None:
    outputs = deploy("dev")
    names = resource_names("dev")
    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)

    # The bucket exists, encrypted (moto's CloudFormation ignores its other properties)
    assert outputs["BucketName"] == names["bucket"]
    rules = s3.get_bucket_encryption(Bucket=names["bucket"])["ServerSideEncryptionConfiguration"]
    assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    # Each work queue dead-letters after MAX_RECEIVE_COUNT receives into its own DLQ
    for queue, dlq in (("IngestQueueUrl", "ingest_dlq"), ("ReportsQueueUrl", "reports_dlq")):
        attributes = sqs.get_queue_attributes(QueueUrl=outputs[queue], AttributeNames=["All"])
        redrive = json.loads(attributes["Attributes"]["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"].endswith(":" + names[dlq])
        assert int(redrive["maxReceiveCount"]) == MAX_RECEIVE_COUNT


@pytest.mark.slow
def test_a_poison_message_on_the_deployed_ingest_queue_ends_in_its_dead_letter_queue(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the stage's stack, and the app's ingest handler consuming its queue as Lambda does
    # (partial batch responses: a failed message comes back, the rest are deleted)
    outputs = deploy("dev")
    monkeypatch.setenv("ROOMTEMP_TABLE_NAME", outputs["TableName"])
    monkeypatch.setenv("ROOMTEMP_BUCKET_NAME", outputs["BucketName"])
    monkeypatch.setenv("ROOMTEMP_INGEST_QUEUE_URL", outputs["IngestQueueUrl"])
    wiring.reset()
    access.ensure_tenant(wiring.repositories().registry, "t1", now_ms())
    sqs = boto3.client("sqs", region_name=REGION)
    poison = "not a reading, not JSON"
    sqs.send_message(QueueUrl=outputs["IngestQueueUrl"], MessageBody=poison)
    good = {"tenant": "t1", "building": "hq", "room": "r1", "temperature": 21.0}
    sqs.send_message(QueueUrl=outputs["IngestQueueUrl"], MessageBody=json.dumps(good))
    poller = QueuePoller(outputs["IngestQueueUrl"], name="ingest", wait_seconds=0)

    # When the handler has seen it as often as the redrive policy allows (and once more)
    with mock.patch.object(operations, "LOCAL_RETRY_AFTER_S", 0):
        for _ in range(MAX_RECEIVE_COUNT + 1):
            poller.poll_once()

    # Then the poison message is in the stage's DLQ, and the good one was handled, not failed
    dead = sqs.receive_message(QueueUrl=outputs["IngestDeadLetterQueueUrl"], MaxNumberOfMessages=10)
    assert [m["Body"] for m in dead.get("Messages", [])] == [poison]
    assert poller.handled == 1
    assert poller.failed == MAX_RECEIVE_COUNT
    left = sqs.receive_message(QueueUrl=outputs["IngestQueueUrl"], MaxNumberOfMessages=10)
    assert left.get("Messages", []) == []


def test_template_bucket_is_private_tls_only_and_lets_only_s3_notify_the_queue() -> None:
    # moto's CloudFormation skips public access blocks, bucket/queue policies and alarms
    resources = infra_template("dev")["Resources"]

    block = resources["DataBucket"]["Properties"]["PublicAccessBlockConfiguration"]
    assert len(block) == 4 and all(block.values())
    [tls] = resources["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (tls["Effect"], tls["Condition"]) == (
        "Deny",
        {"Bool": {"aws:SecureTransport": "false"}},
    )
    [notification] = resources["DataBucket"]["Properties"]["NotificationConfiguration"][
        "QueueConfigurations"
    ]
    assert notification["Queue"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "incoming/"}]
    [allow] = resources["IngestQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert "aws:SourceArn" in allow["Condition"]["ArnLike"]


def test_template_alarms_on_dlq_depth_throttles_and_5xx() -> None:
    resources = infra_template("dev")["Resources"].values()

    alarms = [r["Properties"] for r in resources if r["Type"] == "AWS::CloudWatch::Alarm"]

    metrics = [alarm["MetricName"] for alarm in alarms]
    assert all(alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}] for alarm in alarms)
    dlqs = set(QUEUE_OF_DECORATOR.values())
    # every DLQ and the stream consumer's failure queue
    assert metrics.count("ApproximateNumberOfMessagesVisible") == len(dlqs) + 1
    assert {"5XXError", "ReadThrottleEvents", "WriteThrottleEvents"} <= set(metrics)


def test_every_function_alarms_on_errors_and_every_queue_on_age() -> None:
    # Given the app's functions: the API and each event handler
    functions = {"roomtemp-dev"} | {f"roomtemp-dev-{s.name}" for s in app.event_sources}
    resources = infra_template("dev", app)["Resources"].values()
    alarms = [r["Properties"] for r in resources if r["Type"] == "AWS::CloudWatch::Alarm"]

    def watched(metric: str, dimension: str) -> list[Any]:
        return [
            a["Dimensions"][0]["Value"]
            for a in alarms
            if a["MetricName"] == metric and a["Dimensions"][0]["Name"] == dimension
        ]

    # Then each has an Errors alarm, each stream consumer an IteratorAge alarm
    assert sorted(watched("Errors", "FunctionName")) == sorted(functions)
    streams = {f"roomtemp-dev-{s.name}" for s in app.event_sources if hasattr(s, "stream_arn")}
    assert streams and set(watched("IteratorAge", "FunctionName")) == streams
    # And each work queue alarms when its oldest message waits too long
    aged = watched("ApproximateAgeOfOldestMessage", "QueueName")
    assert sorted(q["Fn::GetAtt"][0] for q in aged) == sorted(set(QUEUE_OF_DECORATOR.values()))


@pytest.mark.parametrize("stage", STAGES)
def test_committed_policy_files_are_the_generated_ones(stage: str) -> None:
    assert policy_path(stage).read_text() == render(policy_document(stage))


@pytest.mark.parametrize("stage", STAGES)
def test_policy_names_only_the_stage_resources(stage: str) -> None:
    names = resource_names(stage)
    other = next(s for s in STAGES if s != stage)

    statements = {s["Sid"]: s for s in policy_document(stage)["Statement"]}

    text = json.dumps(policy_document(stage))
    assert f"-{other}" not in text
    assert statements["Table"]["Resource"] == [f"arn:aws:dynamodb:*:*:table/{names['table']}"]
    assert all(
        r.startswith(f"arn:aws:s3:::{names['bucket']}/")
        for r in statements["BucketObjects"]["Resource"]
    )
    wildcard = [s["Sid"] for s in statements.values() if s["Resource"] == "*"]
    assert wildcard == ["Tracing"]  # X-Ray has no resource-level permissions


def test_config_stages_use_the_generated_policies_and_table_names() -> None:
    from infra.template import ROOT

    config = json.loads((ROOT / ".chalice" / "config.json").read_text())

    assert set(config["stages"]) == {"local", *STAGES}
    for stage in STAGES:
        settings = config["stages"][stage]
        assert settings["autogen_policy"] is False
        assert settings["iam_policy_file"] == policy_path(stage).name
        variables = settings["environment_variables"]
        assert variables["ROOMTEMP_TABLE_NAME"] == resource_names(stage)["table"]
        assert variables["ROOMTEMP_BUCKET_NAME"] == resource_names(stage)["bucket"]


def sqs_app() -> Chalice:
    """An app with the two queue consumers the ingest and reports work adds."""
    app = Chalice(app_name="roomtemp")

    @app.on_sqs_message(queue="roomtemp-ingest", batch_size=10, name="ingest")
    def ingest(event: Any) -> None: ...

    @app.on_sqs_message(queue="roomtemp-reports", batch_size=1)
    def compute_report(event: Any) -> None: ...

    return app


def test_merge_template_points_sqs_handlers_at_the_stage_queues() -> None:
    resources = merge_template("prod", sqs_app())["Resources"]

    ingest = resources["Ingest"]["Properties"]
    event = ingest["Events"]["IngestSqsEventSource"]["Properties"]
    # Fn::Sub is the key Chalice uses, so the deep merge replaces Chalice's queue-name ARN
    assert event["Queue"] == {"Fn::Sub": "${IngestQueue.Arn}"}
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert ingest["FunctionName"] == "roomtemp-prod-ingest"
    reports = resources["ComputeReport"]["Properties"]["Events"]["ComputeReportSqsEventSource"]
    assert reports["Properties"]["Queue"] == {"Fn::Sub": "${ReportsQueue.Arn}"}


def test_merge_template_refuses_a_queue_it_does_not_provision() -> None:
    app = Chalice(app_name="roomtemp")

    @app.on_sqs_message(queue="somebody-elses-queue")
    def handler(event: Any) -> None: ...

    with pytest.raises(ValueError, match="QUEUE_OF_DECORATOR"):
        merge_template("dev", app)
