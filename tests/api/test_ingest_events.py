"""The ingest Lambda via Chalice's test client and moto: S3 notifications and queue messages."""

from __future__ import annotations

import gzip
import json
from typing import TYPE_CHECKING, Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.domain.access import Scope
from infra.cli.keys import bootstrap_key

if TYPE_CHECKING:
    from tests.ingest_fixtures import Aws

pytest_plugins = ["tests.ingest_fixtures"]

T0 = 1_735_689_600  # 2025-01-01T00:00:00Z
HEADER = "building,room,sensor_id,timestamp,temperature,unit,humidity,co2\n"


def csv_rows(count: int, room: str = "r1") -> str:
    return "".join(f"b1,{room},s1,{T0 + i * 60},{20 + i % 5},C,40,\n" for i in range(count))


def invoke(client: Client, messages: list[dict[str, Any]]) -> list[str]:
    """Invoke the ingest handler with received messages; return the failed message ids."""
    event = client.events.generate_sqs_event([m["Body"] for m in messages])
    for record, message in zip(event["Records"], messages, strict=True):
        record["messageId"] = message["MessageId"]
        record["receiptHandle"] = message["ReceiptHandle"]
    response = client.lambda_.invoke("ingest", event).payload
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def run_queue(aws: Aws, client: Client) -> int:
    """Feed the queue to the handler until it is empty (continuations included); return batches."""
    batches = 0
    while messages := aws.receive():
        for start in range(0, len(messages), 10):
            batch = messages[start : start + 10]
            assert invoke(client, batch) == []
            batches += 1
            aws.sqs.delete_message_batch(
                QueueUrl=aws.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )
    return batches


def test_gzip_csv_dropped_in_the_bucket_is_stored_and_reported(aws: Aws) -> None:
    # Given a gzip CSV under incoming/<tenant>/ (the bucket notifies the queue)
    key = "incoming/acme/2025-01-01/room.csv.gz"
    aws.drop(key, gzip.compress((HEADER + csv_rows(120)).encode()))
    # When the queue is fed to the handler
    with Client(app) as client:
        run_queue(aws, client)
    # Then every row is stored and the report says so
    report = aws.report(key)
    assert (report["status"], report["rows_read"], report["stored"]) == ("done", 120, 120)
    assert aws.count() == 120


def test_ndjson_with_bad_lines_reports_line_numbers_and_reasons(aws: Aws) -> None:
    key = "incoming/acme/events.ndjson"
    lines = [
        json.dumps({"building": "b1", "room": "r1", "timestamp": T0 + i, "co2": 450})
        for i in range(5)
    ]
    lines.insert(2, "{broken")
    lines.insert(4, json.dumps({"building": "b1", "room": "r1", "timestamp": T0, "humidity": 140}))
    aws.drop(key, ("\n".join(lines) + "\n").encode())
    with Client(app) as client:
        run_queue(aws, client)
    report = aws.report(key)
    assert (report["rows_read"], report["stored"], report["rejected"]) == (7, 5, 2)
    reasons = {r["line"]: r["reason"] for r in report["rejected_rows"]}
    assert "not valid JSON" in reasons[3]
    assert "humidity" in reasons[5]
    assert aws.count() == 5


def test_duplicate_delivery_of_an_s3_event_stores_nothing_twice(aws: Aws) -> None:
    key = "incoming/acme/twice.csv"
    aws.drop(key, (HEADER + csv_rows(60)).encode())
    (notification,) = aws.receive()
    with Client(app) as client:
        assert invoke(client, [notification]) == []
        first = aws.report(key)
        assert invoke(client, [notification, notification]) == []  # delivered again, twice
    assert aws.count() == 60
    assert aws.report(key) == first


def test_malformed_file_gets_a_failed_report(aws: Aws) -> None:
    key = "incoming/acme/garbage.csv.gz"
    aws.drop(key, b"this is not gzip")
    with Client(app) as client:
        run_queue(aws, client)
    report = aws.report(key)
    assert report["status"] == "failed" and "gzip" in report["error"]
    assert aws.count() == 0


def test_large_file_continues_through_the_queue(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a budget of 200 rows per invocation (forced; in Lambda the time budget does this)
    monkeypatch.setenv("ROOMTEMP_INGEST_MAX_ROWS_PER_INVOCATION", "200")
    monkeypatch.setenv("ROOMTEMP_INGEST_CHUNK_ROWS", "100")
    monkeypatch.setenv("ROOMTEMP_INGEST_RESERVE_SECONDS", "0")
    from chalicelib import wiring

    wiring.reset()
    from chalicelib.settings import get_settings

    get_settings()
    key = "incoming/acme/large.csv"
    aws.drop(key, (HEADER + csv_rows(1000)).encode())
    # When the queue (notification, then each continuation) is fed to the handler
    with Client(app) as client:
        batches = run_queue(aws, client)
    # Then the file was finished in several invocations, each row stored once
    report = aws.report(key)
    assert report["status"] == "done"
    # 1001 lines, at most 200 per invocation (fewer if the test client's 3 s ran out first)
    assert batches == report["segments"] >= 6
    assert (report["rows_read"], report["stored"]) == (1000, 1000)
    assert aws.count() == 1000


def test_poison_message_is_a_batch_item_failure_and_valid_ones_are_stored_once(aws: Aws) -> None:
    good = {
        "tenant": "acme",
        "readings": [{"building": "b1", "room": "r1", "timestamp": T0, "temperature": 21}],
    }
    for body in (
        json.dumps(good),
        "poison",
        json.dumps({"tenant": "acme", "building": "b1", "room": "r2", "timestamp": T0, "co2": 500}),
    ):
        aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=body)
    messages = aws.receive()
    poison = next(m["MessageId"] for m in messages if m["Body"] == "poison")
    with Client(app) as client:
        assert invoke(client, messages) == [poison]
        assert invoke(client, messages) == [poison]  # the batch again: still stored once
    assert aws.count() == 2


def acme_key() -> str:
    """An ingest key of tenant acme (the fixture created the tenant)."""
    return str(bootstrap_key("acme", [Scope.INGEST], "async tests")["key"])


def test_async_post_queues_valid_readings_and_answers_202(aws: Aws) -> None:
    body = {
        "readings": [
            {"building": "b1", "room": "r1", "timestamp": T0 + i, "temperature": 20.5}
            for i in range(25)
        ]
        + [{"building": "b1", "room": "r1", "temperature": -500}]
    }
    with Client(app) as client:
        response = client.http.post(
            "/readings?async=true",
            body=json.dumps(body),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {acme_key()}"},
        )
        assert response.status_code == 202
        assert response.json_body["queued"] == 25
        assert [r["index"] for r in response.json_body["rejected"]] == [25]
        assert aws.count() == 0  # not stored yet: queued
        run_queue(aws, client)
    assert aws.count() == 25


def test_async_post_with_only_invalid_readings_is_422_and_queues_nothing(aws: Aws) -> None:
    with Client(app) as client:
        response = client.http.post(
            "/readings?async=true",
            body=json.dumps({"building": "b1", "room": "r1"}),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {acme_key()}"},
        )
        assert response.status_code == 422
        bad_flag = client.http.post(
            "/readings?async=maybe",
            body=json.dumps({"building": "b1", "room": "r1", "co2": 1}),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {acme_key()}"},
        )
        assert bad_flag.status_code == 422
    assert aws.receive() == []
