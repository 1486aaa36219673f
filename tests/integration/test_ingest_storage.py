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

if TYPE_CHECKING:
    from tests.ingest_fixtures import Aws

pytest_plugins = ["tests.ingest_fixtures"]

T0 = 1_735_689_600


class FlakyDynamo:
    """A DynamoDB client whose every 3rd BatchWriteItem leaves half its items unprocessed."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls = 0
        self.unprocessed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        self.calls += 1
        if self.calls % 3:
            return dict(self._client.batch_write_item(RequestItems=RequestItems))
        (table, requests), *_ = RequestItems.items()
        keep, leave = requests[: len(requests) // 2], requests[len(requests) // 2 :]
        if keep:
            self._client.batch_write_item(RequestItems={table: keep})
        self.unprocessed += len(leave)
        return {"UnprocessedItems": {table: leave} if leave else {}}


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
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given readings already stored through the API path (rollups refreshed on write)
    repos = wiring.repositories()
    live = [
        Reading(
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
    # read in segments of 400 rows whose rollups are refreshed every 100 touched minutes
    monkeypatch.setattr(files, "REFRESH_MINUTES", 100)
    rows = [f"b1,r{i % 3},s1,{T0 + i // 3 * 20},{20 + i % 7 / 10}\n" for i in range(2700)]
    repeats = rows[100:160]
    key = "incoming/acme/history.csv"
    header = "building,room,sensor_id,timestamp,temperature\n"
    aws.drop(key, (header + "".join(rows + repeats)).encode())
    # When the file is ingested, continuation after continuation (an invocation per message)
    for _ in range(20):
        messages = aws.receive()
        if not messages:
            break
        for message in messages:
            consumer(aws, repos, chunk_rows=100, max_rows=400).handle(message["Body"])
    report = aws.report(key)
    assert (report["status"], report["stored"], report["duplicates"]) == ("done", 2700, 60)
    assert report["segments"] == 7
    # Then every minute and hour rollup equals what writing the same readings live gives
    reference = InMemoryReadingRepository()
    reference.put_readings(live)
    reference.put_readings(
        [
            Reading(
                building="b1",
                room=f"r{i % 3}",
                sensor_id="s1",
                ts_ms=(T0 + i // 3 * 20) * 1000,
                temperature=20 + i % 7 / 10,
            )
            for i in range(2700)
        ]
    )
    for room in ("r0", "r1", "r2"):
        for resolution in Resolution:
            window = ("b1", room, resolution, T0 * 1000 - 3_600_000, T0 * 1000 + 7 * 3_600_000)
            got = repos.readings.rollups(*window)  # type: ignore[attr-defined]
            assert got == reference.rollups(*window)
            assert got


class CountingDynamo:
    """A DynamoDB client that counts what is read: BatchGetItem keys by kind, and Queries with
    the items each read."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.reading_keys = 0
        self.rollup_keys = 0
        self.queries: list[dict[str, Any]] = []
        self.scanned: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        for request in RequestItems.values():
            for key in request["Keys"]:
                if key["sk"]["S"].startswith("m#"):
                    self.rollup_keys += 1
                else:
                    self.reading_keys += 1
        return dict(self._client.batch_get_item(RequestItems=RequestItems))

    def query(self, **kwargs: Any) -> dict[str, Any]:
        self.queries.append(kwargs)
        answer = dict(self._client.query(**kwargs))
        self.scanned.append(answer["ScannedCount"])
        return answer


def test_a_file_newer_than_its_rooms_history_is_written_without_reading_it_back(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given rooms with 10 minutes of history, and an export of the 8 hours that follow
    counting = CountingDynamo(wiring.aws_client("dynamodb"))
    registry = wiring.repositories().registry
    counted = dynamo_readings(counting, aws.table, sleep=lambda _: None)
    repos = Repositories(
        readings=counted,
        registry=registry,
        keys=wiring.repositories().keys,
        rollups=counted,
    )
    history = [
        Reading(
            building="b1",
            room=f"r{i % 4}",
            sensor_id="s1",
            ts_ms=(T0 + i * 15) * 1000,
            temperature=19.0,
        )
        for i in range(40)
    ]
    repos.readings.put_readings(history)
    minutes_stored = len(
        repos.readings.rollups(  # type: ignore[attr-defined]
            "b1", "r1", Resolution.MINUTE, T0 * 1000, T0 * 1000 + 3_600_000
        )
    )
    assert minutes_stored > 0
    counting.queries.clear()
    counting.scanned.clear()
    counting.reading_keys = counting.rollup_keys = 0
    start = T0 + 40 * 15
    rows = "".join(f"b1,r{i % 4},s1,{start + i * 15},21.5\n" for i in range(2000))
    key = "incoming/acme/export.csv"
    aws.drop(key, ("building,room,sensor_id,timestamp,temperature\n" + rows).encode())
    # When it is ingested, its rollups refreshed every 450 touched minutes (mid-hour)
    monkeypatch.setattr(files, "REFRESH_MINUTES", 450)
    ingest_queue(aws, repos, chunk_rows=250)
    # Then every row is stored and no reading was read back: per room one latest-reading Query;
    # per refresh and room one Query of the keys and counts of the minute rollups of the hours
    # its rows touch (hour rollups are rebuilt from them); and the history's minute rollups read
    # whole once. The minutes of an hour that a refresh left half done are held, not read again.
    assert aws.report(key)["stored"] == 2000
    assert counting.reading_keys == counting.rollup_keys == 0
    kinds: dict[str, list[int]] = {"latest": [], "counts": [], "whole": []}
    for query, scanned in zip(counting.queries, counting.scanned, strict=True):
        if query.get("Limit") == 1:
            kinds["latest"].append(scanned)
        elif query.get("ProjectionExpression") == "sk, #n":
            kinds["counts"].append(scanned)
        else:
            assert query["ExpressionAttributeValues"][":low"]["S"].startswith("m#")
            kinds["whole"].append(scanned)
    assert len(kinds["latest"]) == 4
    assert len(kinds["counts"]) >= 4 * 4  # 2000 touched minutes, a refresh every 450 or more
    assert kinds["whole"] == [minutes_stored] * 4
    # And the rollups are those of all the readings
    hours = repos.readings.rollups(  # type: ignore[attr-defined]
        "b1", "r1", Resolution.HOUR, T0 * 1000 - 3_600_000, T0 * 1000 + 10 * 3_600_000
    )
    assert sum(r.readings for _, r in hours) == 510
