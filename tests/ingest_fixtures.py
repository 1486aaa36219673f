"""Fixtures of the ingest tests (issue 4): moto with the table, the bucket and the ingest queues.

Test modules load them with `pytest_plugins = ["tests.ingest_fixtures"]`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib import wiring
from chalicelib.aws import keys
from chalicelib.domain.imports import status_key
from chalicelib.services import access
from chalicelib.settings import get_settings
from infra.tables import create_table


@dataclass
class Aws:
    """Clients and names of one test's moto world."""

    s3: Any
    sqs: Any
    dynamodb: Any
    bucket: str
    table: str
    queue_url: str
    dlq_url: str

    def drop(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def receive(self) -> list[dict[str, Any]]:
        """Every message now visible on the ingest queue (received, so hidden for a while)."""
        messages: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return messages
            messages += batch

    def report(self, key: str) -> dict[str, Any]:
        body = self.s3.get_object(Bucket=self.bucket, Key=status_key(key))["Body"]
        return dict(json.loads(body.read()))

    def count(self) -> int:
        """Stored readings: not registry items (pk '@...') nor rollups (sk after every reading)."""
        return int(
            self.dynamodb.scan(
                TableName=self.table,
                Select="COUNT",
                FilterExpression="NOT begins_with(pk, :registry) AND sk <= :last_reading",
                ExpressionAttributeValues={
                    ":registry": {"S": "@"},
                    ":last_reading": {"S": keys.READINGS_HIGH},
                },
            )["Count"]
        )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """moto with the table, the bucket (notifying incoming/ to the queue), the queue and its DLQ."""
    suffix = uuid.uuid4().hex[:8]
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "ROOMTEMP_TABLE_NAME": f"readings-{suffix}",
        "ROOMTEMP_BUCKET_NAME": f"data-{suffix}",
        "ROOMTEMP_INGEST_QUEUE_NAME": f"ingest-{suffix}",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "ROOMTEMP_INGEST_QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        wiring.reset()
        from infra.local import create_ingest_resources

        session = boto3.session.Session(region_name="us-east-1")
        dynamodb = session.client("dynamodb")
        create_table(dynamodb, f"readings-{suffix}")
        s3, sqs = session.client("s3"), session.client("sqs")
        queue_url, dlq_url = create_ingest_resources(s3, sqs, f"data-{suffix}", f"ingest-{suffix}")
        monkeypatch.setenv("ROOMTEMP_INGEST_QUEUE_URL", queue_url)
        wiring.reset()
        # Files and messages are stored for tenant "acme" (incoming/acme/...): it must exist.
        access.ensure_tenant(wiring.repositories().registry, "acme", 0)
        get_settings()  # cached now: the Chalice test client's stage variables do not replace it
        world = Aws(s3, sqs, dynamodb, f"data-{suffix}", f"readings-{suffix}", queue_url, dlq_url)
        for message in world.receive():  # S3's s3:TestEvent
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        yield world
    wiring.reset()
