"""S3 files and SQS messages ingested while DynamoDB, S3 and SQS fail: nothing lost or doubled.

The workload of test_fault_ingest (ROOMTEMP_FAULT_QUEUE_READINGS, default 3,000 in make test;
`make faults`: 100,000; ~2% invalid, ~5% resent) goes out in batches of 1000: even batches as files
dropped under incoming/acme/ (CSV and NDJSON in turn; the bucket notifies the ingest queue), odd
batches as readings messages of 100 on the queue. This test plays Lambda's SQS poller: it receives
up to 10 messages, calls the app's own "ingest" handler with them, deletes the ones it handled and
makes the failed ones visible again at once, as SQS redelivers them, until the queue is empty.

Meanwhile the app's DynamoDB client fails ROOMTEMP_FAULT_RATE of its attempts and
ROOMTEMP_FAULT_CALL_RATE of its calls outright (and holds back batch-write items), and its S3 and
SQS clients fail a share of theirs (S3 reads and report writes; the continuation sends, which are
few, fail whole with ROOMTEMP_FAULT_SQS_CALL_RATE, default 0.2). Each file is read in segments of
INGEST_ROWS rows, so continuations are faulted too.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from chalicelib import wiring
from tests.streams import drain_table

from .conftest import _all_items_sorted_once, fast_moto
from .faults import ErrorShape, FaultInjector
from .support import Key, assert_rollups_agree, changed_values
from .test_fault_ingest import ROOMS, Workload, make_workload, stored_readings

if TYPE_CHECKING:
    from tests.ingest_fixtures import Aws

pytest_plugins = ["tests.ingest_fixtures"]

TENANT = "acme"  # the tenant tests.ingest_fixtures creates
INGEST_ROWS = 400  # rows per invocation: a file of 1000 rows takes three segments
CSV_COLUMNS = ["building", "room", "sensor_id", "timestamp", "temperature"]
MAX_RECEIVES = 200  # a message failing this often would be dead-lettered: the test fails


def _xml_error(code: str, status: int, message: str) -> ErrorShape:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message><RequestId>FAULT</RequestId></Error>"
    ).encode()
    headers = {"Content-Type": "application/xml", "Content-Length": str(len(body))}
    return ErrorShape(code, status, body, headers)


def _sqs_error(code: str, status: int, message: str) -> ErrorShape:
    body = json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}).encode()
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-query-error": f"{code};Receiver",
        "Content-Length": str(len(body)),
    }
    return ErrorShape(code, status, body, headers)


S3_ERRORS = (
    _xml_error("SlowDown", 503, "Please reduce your request rate."),
    _xml_error("InternalError", 500, "We encountered an internal error. Please try again."),
)
SQS_ERRORS = (
    _sqs_error("ThrottlingException", 400, "Rate exceeded"),
    _sqs_error("InternalError", 500, "Internal error"),
)


@pytest.fixture
def ingest_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small segments (so files continue), and a fast moto; before `aws` reads the settings."""
    from moto.dynamodb.models.table import Table

    monkeypatch.setenv("ROOMTEMP_INGEST_MAX_ROWS_PER_INVOCATION", str(INGEST_ROWS))
    monkeypatch.setenv("ROOMTEMP_INGEST_CHUNK_ROWS", "200")
    monkeypatch.setattr(Table, "all_items", _all_items_sorted_once)
    fast_moto()


def csv_file(items: list[dict[str, Any]]) -> bytes:
    lines = [",".join(CSV_COLUMNS)]
    lines += [",".join(str(item.get(c, "")) for c in CSV_COLUMNS) for item in items]
    return ("\n".join(lines) + "\n").encode()


def ndjson_file(items: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in items).encode()


def send_work(aws: Aws, workload: Workload) -> dict[str, list[Key | None]]:
    """Drop the even batches as files, queue the odd ones as messages; the files' row keys."""
    files: dict[str, list[Key | None]] = {}
    for number, (items, keys) in enumerate(zip(workload.batches, workload.valid, strict=True)):
        if number % 2 == 0:
            if number % 4 == 0:
                key, data = f"incoming/{TENANT}/fault/{number:05d}.csv", csv_file(items)
            else:
                key, data = f"incoming/{TENANT}/fault/{number:05d}.ndjson", ndjson_file(items)
            aws.drop(key, data)
            files[key] = keys
            continue
        bodies = [
            json.dumps({"tenant": TENANT, "readings": items[start : start + 100]})
            for start in range(0, len(items), 100)
        ]
        for start in range(0, len(bodies), 10):
            entries = [
                {"Id": str(i), "MessageBody": body}
                for i, body in enumerate(bodies[start : start + 10])
            ]
            assert not aws.sqs.send_message_batch(QueueUrl=aws.queue_url, Entries=entries).get(
                "Failed"
            )
    return files


class Poller:
    """Lambda's SQS event source, played by the test: receive, invoke, delete or redeliver."""

    def __init__(self, aws: Aws) -> None:
        from app import app

        self.aws = aws
        self.handler = app.handler_map["ingest"]
        self.receives: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()
        self.invocations = self.failed = self.handled = 0

    def drain(self) -> None:
        from chalice.local import LambdaContext

        from infra.local import sqs_event

        sqs, url = self.aws.sqs, self.aws.queue_url
        while messages := sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", []):
            for message in messages:
                self.receives[message["MessageId"]] += 1
                assert self.receives[message["MessageId"]] <= MAX_RECEIVES, message["Body"][:300]
            context = LambdaContext("ingest", memory_size=1024, max_runtime_ms=900_000)
            response = self.handler(sqs_event(messages, url), context)
            self.invocations += 1
            failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            for message in messages:
                if message["MessageId"] in failed:
                    self.failed += 1
                    # Visible again now: SQS would redeliver after the visibility timeout.
                    sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    self.handled += 1
                    body = json.loads(message["Body"])
                    self.kinds[body.get("kind") or ("s3" if "Records" in body else "readings")] += 1
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_faulted_file_and_message_ingest_stores_every_valid_reading_once(
    ingest_caps: None, aws: Aws, no_backoff: None
) -> None:
    n = int(os.environ.get("ROOMTEMP_FAULT_QUEUE_READINGS", "3000"))
    end_ms = int(time.time() * 1000) - 3_600_000
    workload = make_workload(n, seed=88, end_ms=end_ms)

    # Given: files in the bucket and readings messages on the queue, and faults on the app's
    # DynamoDB, S3 and SQS clients
    files = send_work(aws, workload)
    started = time.monotonic()
    injectors = _attach_faults()
    poller = Poller(aws)

    # When: the queue is fed to the ingest handler, failed messages redelivered, until it is empty
    try:
        poller.drain()
        # And the table's stream reaches the consumer under the same faults (plus outages)
        injectors["dynamodb"].call_rate = max(injectors["dynamodb"].call_rate, 0.05)
        streamed = drain_table(aws.table)
    finally:
        for injector in injectors.values():
            injector.detach()
    elapsed = time.monotonic() - started

    # Then: the table holds exactly the valid distinct readings, with their first values
    stored = stored_readings(aws.dynamodb, aws.table, TENANT)
    lost = len(workload.values.keys() - stored.keys())
    stray = len(stored.keys() - workload.values.keys())
    reports = {key: aws.report(key) for key in files}
    figures = {
        "readings_sent": n,
        "files": len(files),
        "messages_of_readings": sum(1 for i in range(len(workload.batches)) if i % 2),
        "valid_distinct": len(workload.values),
        "stored": len(stored),
        "lost": lost,
        "stray": stray,
        "invocations": poller.invocations,
        "messages_handled": poller.handled,
        "messages_by_kind": dict(poller.kinds),
        "continuations_needed": sum(r["segments"] - 1 for r in reports.values()),
        "messages_failed_and_redelivered": poller.failed,
        "most_receives_of_one_message": max(poller.receives.values()),
        "stream_records": streamed.records,
        "stream_batches_delivered_again": streamed.replays,
        "faults_injected": {s: i.total for s, i in injectors.items()},
        "faults_by_kind": {s: dict(i.injected) for s, i in injectors.items()},
        "elapsed_s": round(elapsed, 1),
    }
    print("\nfault queue ingest: " + json.dumps(figures))
    assert all(i.total > 0 for i in injectors.values()), "a client was never faulted"
    assert poller.failed > 0, "no message ever failed: the faults never reached the handler"
    assert streamed.replays > 0, "the stream consumer never failed: nothing was replayed"
    assert (lost, stray) == (0, 0)
    assert not changed_values(stored, workload.values)

    # And: every file's report is done and accounts for each of its rows exactly once
    for key, keys in files.items():
        report = reports[key]
        invalid = sum(k is None for k in keys)
        assert report["status"] == "done", (key, report)
        assert report["rows_read"] == len(keys), (key, report)
        assert report["rejected"] == invalid, (key, report)
        assert report["stored"] + report["duplicates"] == len(keys) - invalid, (key, report)

    # And: duplicates of continuations (a send that failed may have been stored) stay duplicates;
    # they do not multiply from segment to segment
    continuations = sum(report["segments"] - 1 for report in reports.values())
    assert poller.kinds["file-segment"] <= continuations + injectors["sqs"].total

    # And: nothing was dead-lettered, and the queue is empty
    assert not aws.sqs.receive_message(QueueUrl=aws.dlq_url, WaitTimeSeconds=0).get("Messages")
    assert not aws.receive()

    # And: the rollups behind series and statistics count every stored reading once
    assert_rollups_agree(TENANT, workload.values, ROOMS)


def _attach_faults() -> dict[str, FaultInjector]:
    rate = float(os.environ.get("ROOMTEMP_FAULT_RATE", "0.2"))
    call_rate = float(os.environ.get("ROOMTEMP_FAULT_CALL_RATE", "0.005"))
    sqs_call_rate = float(os.environ.get("ROOMTEMP_FAULT_SQS_CALL_RATE", "0.2"))
    attached = {
        "dynamodb": FaultInjector(rate=rate, call_rate=call_rate, unprocessed_rate=rate, seed=8),
        "s3": FaultInjector(rate=rate / 2, call_rate=call_rate, errors=S3_ERRORS, seed=9),
        "sqs": FaultInjector(rate=rate, call_rate=sqs_call_rate, errors=SQS_ERRORS, seed=10),
    }
    for service, injector in attached.items():
        injector.attach(wiring.aws_client(service), service)
    return attached
