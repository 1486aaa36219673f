"""The ingest path against moto: throttling and UnprocessedItems lose nothing; adapter behaviour."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from chalicelib import wiring
from chalicelib.aws.registry import DynamoKeyRepository, DynamoRegistryRepository
from chalicelib.aws.s3 import S3ObjectStore
from chalicelib.aws.sqs import SqsQueue
from chalicelib.domain.models import Reading
from chalicelib.domain.rollups import Resolution
from chalicelib.ports import ObjectGoneError, Repositories
from chalicelib.services import imports as files
from chalicelib.services.ingest import Writer
from chalicelib.services.messages import Consumer
from tests.factories import dynamo_readings, dynamo_table
from tests.fakes import InMemoryReadingRepository
from tests.streams import consume, drain_table

if TYPE_CHECKING:
    from tests.ingest_fixtures import Aws

pytest_plugins = ["tests.ingest_fixtures"]

T0 = 1_735_689_600


class FlakyDynamo:
    """A DynamoDB client whose every 3rd BatchExecuteStatement throttles half its statements
    (they are not executed), as DynamoDB does statement by statement."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls = 0
        self.unprocessed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_execute_statement(self, Statements: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        if self.calls % 3 or len(Statements) < 2:
            return dict(self._client.batch_execute_statement(Statements=Statements))
        keep = len(Statements) // 2
        done = self._client.batch_execute_statement(Statements=Statements[:keep])["Responses"]
        self.unprocessed += len(Statements) - keep
        throttled = {"Error": {"Code": "ThrottlingError", "Message": "injected"}}
        return {"Responses": [*done, *([throttled] * (len(Statements) - keep))]}


def throttle_every_third_call(client: Any) -> list[int]:
    """Every 3rd DynamoDB request answers ProvisionedThroughputExceeded; botocore retries it."""
    seen = [0, 0]

    def before_send(request: Any, **_: Any) -> AWSResponse | None:
        seen[0] += 1
        if seen[0] % 3:
            return None
        seen[1] += 1
        body = json.dumps(
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "injected",
            }
        ).encode()
        return AWSResponse(
            request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(body)
        )

    client.meta.events.register_first("before-send.dynamodb", before_send)
    return seen


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data

    def read(self, *_: Any) -> bytes:
        data, self._data = self._data, b""
        return data


def consumer(aws: Aws, repos: Repositories, *, chunk_rows: int, max_rows: int = 0) -> Consumer:
    """The ingest consumer on moto's bucket and queue, writing through `repos`."""
    return Consumer(
        objects=S3ObjectStore(aws.s3, aws.bucket),
        queue=SqsQueue(aws.sqs, url=aws.queue_url),
        store=Writer(repos),
        budget=files.Budget(max_rows=max_rows),
        chunk_rows=chunk_rows,
    )


def ingest_queue(aws: Aws, repos: Repositories, *, chunk_rows: int) -> None:
    """Hand every message now on the ingest queue to one consumer."""
    handler = consumer(aws, repos, chunk_rows=chunk_rows)
    for message in aws.receive():
        handler.handle(message["Body"])


def test_throttling_and_unprocessed_items_lose_nothing_and_count_nothing_twice(aws: Aws) -> None:
    # Given a DynamoDB client that throttles every 3rd request and drops half of every 3rd batch
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )
    throttled = throttle_every_third_call(client)
    flaky = FlakyDynamo(client)
    repo = dynamo_readings(flaky, aws.table, sleep=lambda _: None)
    registry_table = dynamo_table(client, aws.table)
    repos = Repositories(
        readings=repo,
        registry=DynamoRegistryRepository(registry_table),
        keys=DynamoKeyRepository(registry_table),
        rollups=repo,
    )
    header = "building,room,sensor_id,timestamp,temperature\n"
    rows = "".join(f"b1,r{i % 4},s1,{T0 + i},21\n" for i in range(300))
    duplicated = "".join(f"b1,r{i % 4},s1,{T0 + i},21\n" for i in range(50))  # again
    bad = f"b1,r1,s1,{T0 + 1},-900\n"  # below absolute zero
    key = "incoming/acme/flaky.csv"
    aws.drop(key, (header + rows + duplicated + bad).encode())
    # When the file is ingested
    ingest_queue(aws, repos, chunk_rows=100)
    # Then faults happened, yet the table holds exactly the valid distinct rows
    assert throttled[1] > 0 and flaky.unprocessed > 0
    assert aws.count() == 300
    report = aws.report(key)
    assert (report["stored"], report["duplicates"], report["rejected"]) == (300, 50, 1)


def test_object_store_streams_from_an_offset_and_notices_a_replaced_object(aws: Aws) -> None:
    objects = S3ObjectStore(aws.s3, aws.bucket)
    aws.drop("incoming/acme/a.csv", b"0123456789")
    etag = objects.etag("incoming/acme/a.csv")
    assert objects.open("incoming/acme/a.csv", etag=etag, start=4).read() == b"456789"
    assert objects.open("incoming/acme/a.csv", etag=etag, start=10).read() == b""
    aws.drop("incoming/acme/a.csv", b"changed")
    with pytest.raises(ObjectGoneError):
        objects.open("incoming/acme/a.csv", etag=etag)
    assert objects.get_json("reports/none.json") is None


def test_queue_sends_many_and_large_bodies_in_allowed_batches(aws: Aws) -> None:
    queue = SqsQueue(aws.sqs, name=wiring.get_settings().ingest_queue_name)
    bodies = [json.dumps({"n": i, "pad": "x" * 60_000}) for i in range(23)]
    queue.send(bodies)
    received = sorted(json.loads(m["Body"])["n"] for m in aws.receive())
    assert received == list(range(23))


def test_a_file_in_several_segments_leaves_every_rollup_as_live_writes_would(
    aws: Aws,
) -> None:
    # Given readings already stored through the API path
    repos = wiring.repositories()
    live = [
        Reading(
            tenant="acme",
            building="b1",
            room=f"r{i % 3}",
            sensor_id="s2",
            ts_ms=(T0 + i * 97) * 1000,
            temperature=18.0 + i % 5,
        )
        for i in range(40)
    ]
    repos.readings.put_readings(live)
    # And a file of 3 rooms x 5 hours of readings 20 s apart in the same hours, with repeats,
    # read in segments of 400 rows
    rows = [f"b1,r{i % 3},s1,{T0 + i // 3 * 20},{20 + i % 7 / 10}\n" for i in range(2700)]
    repeats = rows[100:160]
    key = "incoming/acme/history.csv"
    header = "building,room,sensor_id,timestamp,temperature\n"
    aws.drop(key, (header + "".join(rows + repeats)).encode())
    # When the file is ingested, continuation after continuation (an invocation per message),
    # and the table's stream reaches the rollups
    for _ in range(20):
        messages = aws.receive()
        if not messages:
            break
        for message in messages:
            consumer(aws, repos, chunk_rows=100, max_rows=400).handle(message["Body"])
    report = aws.report(key)
    assert (report["status"], report["stored"], report["duplicates"]) == ("done", 2700, 60)
    assert report["segments"] == 7
    assert drain_table(aws.table).records >= 2740  # the readings (and the rollups it writes)
    # Then every minute and hour rollup equals what writing the same readings live gives
    reference = InMemoryReadingRepository()
    reference.put_readings(live)
    reference.put_readings(
        [
            Reading(
                tenant="acme",
                building="b1",
                room=f"r{i % 3}",
                sensor_id="s1",
                ts_ms=(T0 + i // 3 * 20) * 1000,
                temperature=20 + i % 7 / 10,
            )
            for i in range(2700)
        ]
    )
    consume(reference)
    for room in ("r0", "r1", "r2"):
        for resolution in Resolution:
            window = (
                "acme",
                "b1",
                room,
                resolution,
                T0 * 1000 - 3_600_000,
                T0 * 1000 + 7 * 3_600_000,
            )
            got = repos.rollups.rollups(*window)
            assert got == reference.rollups(*window)
            assert got


class CountingDynamo:
    """A DynamoDB client that counts the calls that read: Query, GetItem and BatchGetItem."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.reads: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name in {"query", "get_item", "batch_get_item"}:
            self.reads.append(name)
        return method


def test_a_file_is_written_without_reading_anything_back(aws: Aws) -> None:
    # Given rooms with history, and an export that overlaps it and goes on for hours
    counting = CountingDynamo(wiring.aws_client("dynamodb"))
    counted = dynamo_readings(counting, aws.table, sleep=lambda _: None)
    repos = Repositories(
        readings=counted,
        registry=wiring.repositories().registry,
        keys=wiring.repositories().keys,
        rollups=counted,
    )
    history = [
        Reading(
            tenant="acme",
            building="b1",
            room=f"r{i % 4}",
            sensor_id="s1",
            ts_ms=(T0 + i * 15) * 1000,
            temperature=19.0,
        )
        for i in range(40)
    ]
    repos.readings.put_readings(history)
    rows = "".join(f"b1,r{i % 4},s1,{T0 + i * 15},21.5\n" for i in range(2000))
    key = "incoming/acme/export.csv"
    aws.drop(key, ("building,room,sensor_id,timestamp,temperature\n" + rows).encode())
    counting.reads.clear()
    # When it is ingested
    ingest_queue(aws, repos, chunk_rows=250)
    # Then every new row is stored, the 40 of the history are duplicates, and nothing was read
    # but the write tokens of those 40 (one BatchGetItem: each INSERT tells whether its key was
    # taken; the token whether by this very write, whose answer was lost)
    status = aws.report(key)
    assert (status["stored"], status["duplicates"]) == (1960, 40)
    assert counting.reads == ["batch_get_item"]
    # And once the stream is consumed, the rollups hold every reading once
    drain_table(aws.table)
    hours = repos.rollups.rollups(
        "acme", "b1", "r1", Resolution.HOUR, T0 * 1000 - 3_600_000, T0 * 1000 + 10 * 3_600_000
    )
    assert sum(r.readings for _, r in hours) == 500


def test_a_gateways_batch_checks_all_its_rooms_with_one_read(aws: Aws) -> None:
    from chalicelib.services import readings as services
    from chalicelib.services.registry import KnownRooms

    # Given a gateway's 100 rooms, existing, and a process that has not seen them yet
    counting = CountingDynamo(wiring.aws_client("dynamodb"))
    repos = Repositories(
        readings=dynamo_readings(counting, aws.table, sleep=lambda _: None),
        registry=DynamoRegistryRepository(dynamo_table(counting, aws.table)),
        keys=wiring.repositories().keys,
        rollups=dynamo_readings(counting, aws.table, sleep=lambda _: None),
    )
    now = T0 * 1000

    def batch(temperature: float) -> list[dict[str, Any]]:
        return [
            {"building": "gw", "room": f"r{i:03d}", "temperature": temperature} for i in range(100)
        ]

    services.ingest_items(repos, batch(20.0), tenant="acme", now_ms=now, max_future_ms=0)
    counting.reads.clear()
    # When it posts a batch of readings for them, twice
    known = KnownRooms(300)
    first = services.ingest_items(
        repos, batch(21.0), tenant="acme", now_ms=now + 60_000, max_future_ms=0, known=known
    )
    reads_first = list(counting.reads)
    second = services.ingest_items(
        repos, batch(22.0), tenant="acme", now_ms=now + 120_000, max_future_ms=0, known=known
    )
    # Then every reading is stored; the first checked the 100 rooms in one BatchGetItem (no
    # GetItem per room), and the second, from the cache, read nothing
    assert (first.accepted, second.accepted) == (100, 100)
    assert reads_first == ["batch_get_item"]
    assert counting.reads == ["batch_get_item"]


def test_a_batch_naming_new_rooms_creates_each_and_its_building_once(aws: Aws) -> None:
    from chalicelib.services import readings as services

    counting = CountingDynamo(wiring.aws_client("dynamodb"))
    registry = DynamoRegistryRepository(dynamo_table(counting, aws.table))
    repos = Repositories(
        readings=dynamo_readings(counting, aws.table, sleep=lambda _: None),
        registry=registry,
        keys=wiring.repositories().keys,
        rollups=dynamo_readings(counting, aws.table, sleep=lambda _: None),
    )
    items = [{"building": "new", "room": f"r{i}", "temperature": 20.0} for i in range(5)]
    outcome = services.ingest_items(repos, items, tenant="acme", now_ms=T0 * 1000, max_future_ms=0)
    assert outcome.accepted == 5
    # one room check for the batch, one building check
    assert counting.reads == ["batch_get_item", "get_item"]
    assert registry.get_building("acme", "new") is not None
    assert {r.room for r in registry.list_rooms("acme", "new", 10, None).items} == {
        f"r{i}" for i in range(5)
    }
