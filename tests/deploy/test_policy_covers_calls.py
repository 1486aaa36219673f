"""Every AWS call the app makes is one its IAM policy allows, on the resource it names.

The app's whole round runs in-process against moto with the dev stage's resource names: readings
(single, batch, Idempotency-Key, async), pages with cursors, a file through the bucket and the
ingest handler, the stream consumer, a report through its queue and worker, registry and key
changes, and a forced building delete. Every botocore call is recorded and turned into the IAM
action and resource ARN AWS would authorize, then checked against `policy_document("dev")` —
so a new call (a PartiQL statement, an S3 delete) cannot ship without its permission.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.client
import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib import wiring
from chalicelib.domain.access import Scope
from infra.cli.keys import bootstrap_key
from infra.local import create_ingest_resources, create_secret
from infra.tables import create_table
from infra.template import policy_document, resource_names

STAGE = "dev"
NAMES = resource_names(STAGE)
T0 = 1_764_460_800  # 2025-11-30T00:00:00Z

Call = tuple[str, str, dict[str, Any]]  # (service, operation, parameters)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Call]]:
    """moto with the dev stage's resources; the list every app call is appended to."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "ROOMTEMP_TABLE_NAME": NAMES["table"],
        "ROOMTEMP_BUCKET_NAME": NAMES["bucket"],
        "ROOMTEMP_INGEST_QUEUE_NAME": NAMES["ingest_queue"],
        "ROOMTEMP_REPORTS_QUEUE_NAME": NAMES["reports_queue"],
        "ROOMTEMP_CURSOR_SECRET_NAME": NAMES["cursor_secret"],
    }.items():
        monkeypatch.setenv(name, value)
    # The deployment's secret, not the test suite's own (tests/conftest.py)
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_PROFILE",
        "ROOMTEMP_INGEST_QUEUE_URL",
        "ROOMTEMP_CURSOR_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        create_table(session.client("dynamodb"), NAMES["table"])
        create_ingest_resources(
            session.client("s3"), session.client("sqs"), NAMES["bucket"], NAMES["ingest_queue"]
        )
        session.client("sqs").create_queue(QueueName=NAMES["reports_queue"])
        create_secret(session.client("secretsmanager"), NAMES["cursor_secret"])
        wiring.reset()
        calls: list[Call] = []
        original = botocore.client.BaseClient._make_api_call

        def record(client: Any, operation: str, params: dict[str, Any]) -> Any:
            calls.append((client.meta.service_model.service_name, operation, params))
            return original(client, operation, params)

        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
        yield calls
    wiring.reset()


def app_round(calls: list[Call]) -> None:
    """What users and workers do, end to end; the setup's own calls are not kept."""
    from app import app
    from tests.streams import drain_table

    key = bootstrap_key("acme", [Scope.ADMIN, Scope.READ, Scope.INGEST], "policy")["key"]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    s3 = boto3.client("s3")
    sqs = boto3.client("sqs")
    calls.clear()
    with Client(app, stage_name=STAGE) as client:

        def call(method: str, path: str, body: Any = None, **extra: str) -> Any:
            data = b"" if body is None else json.dumps(body).encode()
            response = client.http.request(method, path, headers={**headers, **extra}, body=data)
            assert response.status_code < 300, (method, path, response.status_code, response.body)
            return json.loads(response.body) if response.body else None

        def deliver(queue: str, handler: str) -> None:
            url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            for _ in range(10):
                messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                    "Messages", []
                )
                if not messages:
                    return
                event = client.events.generate_sqs_event([m["Body"] for m in messages], queue)
                client.lambda_.invoke(handler, event)
                for m in messages:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

        reading = {"building": "hq", "room": "r1", "temperature": 21.5, "timestamp": T0}
        call("POST", "/readings", reading)
        batch = [{**reading, "room": f"r{i}", "timestamp": T0 + i} for i in range(30)]
        call("POST", "/readings", {"readings": batch})
        call("POST", "/readings", {**reading, "timestamp": T0 + 5}, **{"Idempotency-Key": "k1"})
        call("POST", "/readings?async=true", {**reading, "timestamp": T0 + 6})
        s3.put_object(
            Bucket=NAMES["bucket"],
            Key="incoming/acme/day.csv",
            Body=b"building,room,sensor_id,timestamp,temperature\nhq,r2,s1,1764460900,20.5\n",
        )
        deliver(NAMES["ingest_queue"], "ingest")
        drain_table(NAMES["table"])
        span = "from=2025-11-30T00:00:00Z&to=2025-11-30T01:00:00Z"
        page = call("GET", f"/buildings/hq/rooms/r1/readings?limit=1&{span}")
        call("GET", f"/buildings/hq/rooms/r1/readings?limit=1&cursor={page['next_cursor']}")
        call("GET", "/buildings/hq/rooms/r1/latest")
        call("GET", "/buildings/hq/rooms/r1/average?minutes=15")
        call("GET", f"/buildings/hq/stats?{span}")
        call("GET", "/buildings/hq/rooms?limit=5")
        call("GET", "/health")
        report = call(
            "POST",
            "/reports",
            {"building": "hq", "from": "2025-11-30T00:00:00Z", "to": "2025-12-01T00:00:00Z"},
        )
        deliver(NAMES["reports_queue"], "compute_report")
        assert call("GET", f"/reports/{report['id']}")["status"] == "completed"
        started = call("POST", "/imports", {"filename": "day.csv"})
        call("GET", started["status_url"])
        call("GET", "/imports?limit=5")
        call("POST", "/sensors", {"sensor_id": "s9", "building": "hq", "room": "r1"})
        created = call("POST", "/keys", {"scopes": ["read"], "name": "temp"})
        call("DELETE", f"/keys/{created['key_id']}")
        call("DELETE", "/buildings/hq/rooms/r3?force=true")
        call("DELETE", "/buildings/hq?force=true")


def permission(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs AWS authorizes for one call."""
    if service == "dynamodbstreams":  # the Streams API's IAM prefix is dynamodb
        return [(f"dynamodb:{operation}", f"arn:aws:dynamodb:*:*:table/{NAMES['table']}/stream/x")]
    if service == "dynamodb":
        table_arn = "arn:aws:dynamodb:*:*:table/{}"
        if operation in ("BatchExecuteStatement", "ExecuteStatement"):
            statements = params.get("Statements") or [params]
            pairs = []
            for statement in statements:
                verb, table = re.match(
                    r'\s*(\w+)\s+(?:INTO\s+|FROM\s+)?"([^"]+)"', statement["Statement"], re.I
                ).groups()  # type: ignore[union-attr]
                pairs.append((f"dynamodb:PartiQL{verb.capitalize()}", table_arn.format(table)))
            return pairs
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", table_arn.format(t)) for t in params["RequestItems"]]
        arn = table_arn.format(params["TableName"])
        if "IndexName" in params:
            arn += f"/index/{params['IndexName']}"
        return [(f"dynamodb:{operation}", arn)]
    if service == "s3":
        bucket = f"arn:aws:s3:::{params['Bucket']}"
        actions = {
            "GetObject": "s3:GetObject",
            "HeadObject": "s3:GetObject",
            "PutObject": "s3:PutObject",
            "CreateMultipartUpload": "s3:PutObject",
            "UploadPart": "s3:PutObject",
            "CompleteMultipartUpload": "s3:PutObject",
            "DeleteObject": "s3:DeleteObject",
        }
        if operation == "DeleteObjects":
            return [
                ("s3:DeleteObject", f"{bucket}/{o['Key']}") for o in params["Delete"]["Objects"]
            ]
        if operation in ("ListObjectsV2", "ListObjects"):
            return [("s3:ListBucket", bucket)]
        needed = [(actions.get(operation, f"s3:{operation}"), f"{bucket}/{params['Key']}")]
        if operation in ("GetObject", "HeadObject"):
            # S3 answers a missing key 404 only to a caller that may list the bucket (403 else)
            needed.append(("s3:ListBucket", bucket))
        return needed
    if service == "sqs":
        name = params.get("QueueName") or params["QueueUrl"].rsplit("/", 1)[-1]
        # A batch call is authorized by its single action (SendMessageBatch: sqs:SendMessage).
        return [(f"sqs:{operation.removesuffix('Batch')}", f"arn:aws:sqs:*:*:{name}")]
    if service == "secretsmanager":
        return [
            (
                f"secretsmanager:{operation}",
                f"arn:aws:secretsmanager:*:*:secret:{params['SecretId']}-AbCdEf",
            )
        ]
    if service == "sns":
        return [(f"sns:{operation}", params["TopicArn"])]
    return [(f"{service}:{operation}", "*")]


ROLE_ACCOUNT = "111111111111"  # the account of roomtemp's role (moto's resources: another one)


def conditions_hold(statement: dict[str, Any], resource: str, principal_account: str) -> bool:
    """Whether a statement's conditions hold for a request on `resource`. The request context
    knows aws:ResourceAccount (the ARN's account) and aws:PrincipalAccount only: a condition on
    any other key (a GetObject carries no s3:prefix) is not counted as holding."""
    context = {
        "aws:ResourceAccount": resource.split(":")[4],
        "aws:PrincipalAccount": principal_account,
    }
    for operator, tests in statement.get("Condition", {}).items():
        for key, wanted in tests.items():
            if key not in context:
                return False
            values = [wanted] if isinstance(wanted, str) else wanted
            values = [v.replace("${aws:PrincipalAccount}", principal_account) for v in values]
            matches = context[key] in values
            if (operator, matches) not in (("StringEquals", True), ("StringNotEquals", False)):
                return False
    return True


def allowed(
    policy: dict[str, Any], action: str, resource: str, principal_account: str = ROLE_ACCOUNT
) -> bool:
    return any(
        statement["Effect"] == "Allow"
        and conditions_hold(statement, resource, principal_account)
        and action in statement["Action"]
        and any(
            fnmatch.fnmatchcase(resource, pattern)
            for pattern in (
                [statement["Resource"]]
                if isinstance(statement["Resource"], str)
                else statement["Resource"]
            )
        )
        for statement in policy["Statement"]
    )


def test_every_call_of_the_app_is_allowed_by_the_stage_policy(recorded: list[Call]) -> None:
    # Given the app's whole round, every call recorded
    app_round(recorded)
    needed = {pair for call in recorded for pair in permission(*call)}
    # Then each (action, resource) is allowed, and the round covered the calls that matter
    policy = policy_document(STAGE)
    missing = sorted(pair for pair in needed if not allowed(policy, *pair))
    assert not missing, f"the policy lacks: {missing}"
    actions = {action for action, _ in needed}
    assert {
        "dynamodb:PartiQLInsert",
        "dynamodb:Query",
        "dynamodb:BatchWriteItem",
        "s3:PutObject",
        "s3:DeleteObject",
        "sqs:SendMessage",
        "secretsmanager:GetSecretValue",
    } <= actions, actions


def test_publishing_an_alert_to_a_tenant_topic_is_allowed(recorded: list[Call]) -> None:
    from chalicelib.domain.notify import SnsTarget

    # Given a topic in another account's region (its topic policy lets our role publish)
    topic = boto3.client("sns", region_name="eu-west-1").create_topic(Name="acme")["TopicArn"]
    recorded.clear()
    # When the notifier publishes to it
    wiring.notifier().deliver(SnsTarget(topic), b"{}", secret="s", delivery_id="d", event="e")
    # Then the stage policy allows the call
    needed = {pair for call in recorded for pair in permission(*call)}
    assert needed == {("sns:Publish", topic)}
    assert all(allowed(policy_document(STAGE), *pair) for pair in needed)


def test_publishing_to_a_topic_of_roomtemps_own_account_is_not_allowed() -> None:
    # A tenant naming roomtemp's own alarm topic (same account as the role) must not page ops.
    policy = policy_document(STAGE)
    own = f"arn:aws:sns:us-east-1:{ROLE_ACCOUNT}:roomtemp-alarms-{STAGE}"
    assert not allowed(policy, "sns:Publish", own)
    assert allowed(policy, "sns:Publish", "arn:aws:sns:eu-west-1:222222222222:acme-alerts")


def test_the_presigned_upload_of_an_import_is_allowed_by_the_stage_policy() -> None:
    from chalicelib.domain.imports import new_import_id, upload_key

    # A presigned POST is no botocore call, so the round cannot record it: S3 authorizes the
    # upload as the signer's (the Lambda role's) s3:PutObject on the form's key.
    key = upload_key("acme", new_import_id(T0 * 1000, "0" * 32), "day.csv")
    policy = policy_document(STAGE)
    assert allowed(policy, "s3:PutObject", f"arn:aws:s3:::{NAMES['bucket']}/{key}")
    assert not allowed(policy, "s3:PutObject", f"arn:aws:s3:::{NAMES['bucket']}/other/{key}")


def test_the_check_finds_a_missing_permission() -> None:
    policy = policy_document(STAGE)
    table = f"arn:aws:dynamodb:*:*:table/{NAMES['table']}"
    assert allowed(policy, "dynamodb:Query", table)
    assert not allowed(policy, "dynamodb:DeleteTable", table)
    assert not allowed(policy, "dynamodb:Query", "arn:aws:dynamodb:*:*:table/another")
