"""The table's stream, read locally: what Lambda's DynamoDB event source does in AWS.

`chalice local` never fires stream handlers, so `make run` runs a StreamPoller thread that reads
the emulator's (or LocalStack's) stream and calls the app's own "rollups" handler with
Lambda-shaped events: batches of up to `batch_size` records, gathered for up to `window_s`,
a failed batch delivered again from the reported record (ReportBatchItemFailures), up to
`max_attempts` times, then its records sent to the failure queue, as the event source mapping's
on-failure destination does. Tests use `drain` to fold what was written, synchronously.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]
log = logging.getLogger(__name__)


def streams_client(endpoint: str | None = None) -> Any:
    """A DynamoDB Streams client. botocore's account-based endpoint
    (<account>.streams-ddb...) is off: moto knows the regional one only."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    return session.client(
        "dynamodbstreams",
        region_name=session.region_name or "us-east-1",
        endpoint_url=endpoint,
        config=Config(account_id_endpoint_mode="disabled"),
    )


def passes_filter(record: dict[str, Any]) -> bool:
    """Whether the event source mapping's filter (infra/template.READING_INSERTS: new readings
    only) lets the record through to the handler."""
    from infra.template import READING_INSERTS

    if record.get("eventName") not in READING_INSERTS["eventName"]:
        return False
    sk = record.get("dynamodb", {}).get("Keys", {}).get("sk", {}).get("S", "")
    prefixes = READING_INSERTS["dynamodb"]["Keys"]["sk"]["S"]
    return any(sk.startswith(p["prefix"]) for p in prefixes)


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record in the shape Lambda hands a DynamoDB stream handler."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if created is not None and hasattr(created, "timestamp"):
        change["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record.get("eventID", ""),
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", "us-east-1"),
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    }


@dataclass
class StreamReader:
    """Reads a table's stream from its start, shard by shard, remembering where it stopped."""

    dynamodb: Any
    streams: Any
    table: str
    stream_arn: str = ""
    _iterators: dict[str, str | None] = field(default_factory=dict)

    def _arn(self) -> str:
        if not self.stream_arn:
            described = self.dynamodb.describe_table(TableName=self.table)["Table"]
            self.stream_arn = str(described["LatestStreamArn"])
        return self.stream_arn

    def read(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Up to `limit` new records, Lambda-shaped, in order per shard."""
        arn = self._arn()
        shards = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        records: list[dict[str, Any]] = []
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self.streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            iterator = self._iterators[shard_id]
            if iterator is None or len(records) >= limit:
                continue
            answer = self.streams.get_records(ShardIterator=iterator, Limit=limit - len(records))
            self._iterators[shard_id] = answer.get("NextShardIterator")
            records.extend(
                lambda_record(r, arn) for r in answer.get("Records", []) if passes_filter(r)
            )
        return records


def lambda_context(name: str, runtime_ms: int) -> Any:
    """The context Lambda would pass the handler `name`, with `runtime_ms` to run."""
    from chalice.local import LambdaContext

    return LambdaContext(name, memory_size=1024, max_runtime_ms=runtime_ms)


def invoke(
    handler: Handler, records: list[dict[str, Any]], runtime_ms: int = 900_000
) -> str | None:
    """Call the handler with one batch; the sequence number to deliver again from, if any."""
    response = handler({"Records": records}, lambda_context("rollups", runtime_ms)) or {}
    failures = response.get("batchItemFailures") or []
    return str(failures[0]["itemIdentifier"]) if failures else None


def _from(records: list[dict[str, Any]], sequence: str) -> list[dict[str, Any]]:
    numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
    return records[numbers.index(sequence) :] if sequence in numbers else records


@dataclass
class Drained:
    """What `drain` handed to the handler."""

    records: int = 0
    batches: int = 0
    replays: int = 0  # batches (or their tails) delivered again after a reported failure


def drain(
    reader: StreamReader, handler: Handler, batch_size: int = 1000, max_attempts: int = 50
) -> Drained:
    """Hand every record written so far to the handler, in batches; a failed batch again from
    the record it reports (a handler that keeps failing raises)."""
    drained = Drained()
    while records := reader.read(batch_size):
        drained.records += len(records)
        drained.batches += 1
        for _attempt in range(max_attempts):
            failed_from = invoke(handler, records)
            if failed_from is None:
                break
            drained.replays += 1
            records = _from(records, failed_from)
        else:
            raise RuntimeError(f"the stream handler keeps failing at {failed_from}")
    return drained


class StreamPoller:
    """make run's event source mapping for the table's stream (see the module docstring)."""

    def __init__(
        self,
        reader: StreamReader,
        handler: Handler | None = None,
        *,
        batch_size: int = 100,
        window_s: float = 1.0,
        max_attempts: int = 3,
        failures: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.reader = reader
        self._handler = handler
        self.batch_size = batch_size
        self.window_s = window_s
        self.max_attempts = max_attempts
        self._failures = failures
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.batches = self.records = self.failed = 0

    @property
    def handler(self) -> Handler:
        if self._handler is None:
            from app import app

            self._handler = app.handler_map["rollups"]
        return self._handler

    def poll_once(self) -> int:
        """Gather one batch (up to the window) and deliver it; the records delivered."""
        deadline = time.monotonic() + self.window_s
        records = self.reader.read(self.batch_size)
        while len(records) < self.batch_size and time.monotonic() < deadline:
            if self._stop.wait(min(0.2, max(0.0, deadline - time.monotonic()))):
                break
            records += self.reader.read(self.batch_size - len(records))
        if not records:
            return 0
        pending = records
        for attempt in range(self.max_attempts):
            try:
                failed_from = invoke(self.handler, pending)
            except Exception:
                log.exception("the stream handler raised")
                failed_from = pending[0]["dynamodb"]["SequenceNumber"]
            if failed_from is None:
                break
            pending = _from(pending, failed_from)
            if attempt + 1 < self.max_attempts:
                self._stop.wait(min(2.0, 0.2 * 2**attempt))
        else:
            self.failed += len(pending)
            if self._failures is not None:
                self._failures(pending)
        self.batches += 1
        self.records += len(records)
        return len(records)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.poll_once():
                    self._stop.wait(0.2)
            except Exception:
                log.exception("stream poller")
                self._stop.wait(1)

    def start(self) -> StreamPoller:
        self._thread = threading.Thread(target=self._loop, name="stream-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None


def send_failures(sqs: Any, queue_url: str) -> Callable[[list[dict[str, Any]]], None]:
    """The on-failure destination: what the records were (as Lambda's record of a failed batch)."""

    def send(records: list[dict[str, Any]]) -> None:
        body = {
            "requestContext": {"condition": "RetryAttemptsExhausted"},
            "DDBStreamBatchInfo": {
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "batchSize": len(records),
                "streamArn": records[0]["eventSourceARN"],
            },
        }
        with contextlib.suppress(Exception):
            sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))

    return send
