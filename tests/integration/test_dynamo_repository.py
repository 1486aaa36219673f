"""What only the DynamoDB adapter must get right: chunks, retries of unprocessed items, reads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.aws import keys
from chalicelib.aws.dynamo import BATCH_WRITE_MAX
from chalicelib.aws.items import reading_item
from chalicelib.aws.retry import RetryPolicy, budget
from chalicelib.domain.errors import StorageUnavailableError
from chalicelib.domain.rollups import Resolution
from tests.factories import MINUTE, T0, dynamo_readings, reading
from tests.integration.conftest import ClientProxy


class UnprocessedClient(ClientProxy):
    """Leaves the second half of the first `failures` batch calls unprocessed, as DynamoDB may."""

    def __init__(self, client: Any, table: str, failures: int) -> None:
        super().__init__(client)
        self.table = table
        self.failures = failures

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls.setdefault("batch_write_item", []).append(RequestItems)
        requests = RequestItems[self.table]
        if self.failures <= 0 or len(requests) < 2:
            return dict(self.client.batch_write_item(RequestItems=RequestItems))
        self.failures -= 1
        half = len(requests) // 2
        self.client.batch_write_item(RequestItems={self.table: requests[:half]})
        return {"UnprocessedItems": {self.table: requests[half:]}}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls.setdefault("batch_get_item", []).append(RequestItems)
        wanted = RequestItems[self.table]
        if self.failures <= 0 or len(wanted["Keys"]) < 2:
            return dict(self.client.batch_get_item(RequestItems=RequestItems))
        self.failures -= 1
        half = len(wanted["Keys"]) // 2
        answer = self.client.batch_get_item(
            RequestItems={self.table: {**wanted, "Keys": wanted["Keys"][:half]}}
        )
        return {
            "Responses": answer["Responses"],
            "UnprocessedKeys": {self.table: {**wanted, "Keys": wanted["Keys"][half:]}},
        }


def all_stored(client: Any, table: str) -> list[dict[str, Any]]:
    """Every reading item of the table (not the rollups that sort after them)."""
    items = client.get_paginator("scan").paginate(TableName=table).search("Items")
    return [i for i in items if i["sk"]["S"] <= keys.READINGS_HIGH]


@pytest.fixture
def own_client(dynamodb: Any) -> Any:
    """A client of the test's own, so event hooks registered on it die with the test."""
    import boto3

    return boto3.client("dynamodb", region_name="us-east-1")


def test_batches_are_written_in_chunks_dynamodb_accepts(own_client: Any, table_name: str) -> None:
    # Given a client that records every BatchExecuteStatement request as it goes out
    dynamodb = own_client
    sizes: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sizes.append(len(params["Statements"]))

    dynamodb.meta.events.register("provide-client-params.dynamodb.BatchExecuteStatement", record)
    repo = dynamo_readings(dynamodb, table_name)
    # When 1000 readings are stored at once
    result = repo.put_readings([reading(T0 + i) for i in range(1000)])
    # Then no request carries more than 25 statements and all 1000 are stored
    assert result.accepted == 1000
    assert max(sizes) <= BATCH_WRITE_MAX
    assert sum(sizes) == 1000
    assert len(all_stored(dynamodb, table_name)) == 1000


def test_unprocessed_items_are_retried_until_everything_is_stored(
    dynamodb: Any, table_name: str
) -> None:
    # Given DynamoDB leaves half of the first several write requests unprocessed
    flaky = UnprocessedClient(dynamodb, table_name, failures=6)
    sleeps: list[float] = []
    repo = dynamo_readings(flaky, table_name, sleep=sleeps.append)
    # When 100 readings are written
    repo.batch_write([reading_item(reading(T0 + i)) for i in range(100)])
    # Then every one is stored, after backing off between retries
    assert len(all_stored(dynamodb, table_name)) == 100
    assert flaky.failures == 0
    assert len(sleeps) >= 1
    assert all(0 <= s <= 2.0 for s in sleeps)


class ThrottledStatementsClient(ClientProxy):
    """Answers the second half of the first `failures` statement batches with ThrottlingError
    (those statements are not executed), as DynamoDB does per statement."""

    def __init__(self, client: Any, failures: int) -> None:
        super().__init__(client)
        self.failures = failures

    def batch_execute_statement(self, Statements: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.setdefault("batch_execute_statement", []).append(Statements)
        if self.failures <= 0 or len(Statements) < 2:
            return dict(self.client.batch_execute_statement(Statements=Statements))
        self.failures -= 1
        half = len(Statements) // 2
        done = self.client.batch_execute_statement(Statements=Statements[:half])["Responses"]
        throttled = {"Error": {"Code": "ThrottlingError", "Message": "slow down"}}
        return {"Responses": [*done, *([throttled] * (len(Statements) - half))]}


def test_throttled_statements_are_sent_again_and_duplicates_are_still_found(
    dynamodb: Any, table_name: str
) -> None:
    # Given 150 readings already stored
    dynamo_readings(dynamodb, table_name).put_readings(
        [reading(T0 + i, temperature=1.0) for i in range(150)]
    )
    # And a table that throttles half the statements of the next calls
    flaky = ThrottledStatementsClient(dynamodb, failures=3)
    repo = dynamo_readings(flaky, table_name, sleep=lambda _: None)
    # When the batch is retried with 10 new readings and other values
    result = repo.put_readings([reading(T0 + i, temperature=2.0) for i in range(160)])
    # Then the 150 are duplicates, nothing old is overwritten, and the 10 are stored
    assert (result.accepted, result.duplicates) == (10, 150)
    window = repo.window("t1", "hq", "r101", T0 - 1, T0 + 1000)
    assert [r.temperature for r in window] == [1.0] * 150 + [2.0] * 10
    assert flaky.failures == 0


def test_two_writers_of_one_batch_at_once_store_it_once_and_count_it_once(
    dynamodb: Any, table_name: str
) -> None:
    # Given two identical batches (a gateway and its retry) with different values, in flight
    # at the same moment: every statement of the second lands between those of the first
    first = [reading(T0 + i, temperature=1.0) for i in range(60)]
    second = [reading(T0 + i, temperature=2.0) for i in range(60)]
    results = []
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(dynamo_readings(dynamodb, table_name).put_readings, batch)
            for batch in (first, second)
        ]
        results = [f.result() for f in futures]
    # Then each reading was stored once, by exactly one of them, and the counts say which
    stored_values = [
        r.temperature
        for r in dynamo_readings(dynamodb, table_name).window("t1", "hq", "r101", T0 - 1, T0 + 1000)
    ]
    assert len(stored_values) == 60
    assert sum(r.accepted for r in results) == 60
    assert sum(r.duplicates for r in results) == 60
    assert stored_values.count(1.0) == results[0].accepted
    assert stored_values.count(2.0) == results[1].accepted


class StuckClient(ClientProxy):
    """Processes no batch write at all: a table throttled for longer than the retries last."""

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls.setdefault("batch_write_item", []).append(RequestItems)
        return {"UnprocessedItems": RequestItems}

    def batch_execute_statement(self, Statements: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.setdefault("batch_execute_statement", []).append(Statements)
        throttled = {"Error": {"Code": "ThrottlingError", "Message": "slow down"}}
        return {"Responses": [throttled] * len(Statements)}


def test_a_table_that_never_processes_a_write_gives_503(dynamodb: Any, table_name: str) -> None:
    stuck = StuckClient(dynamodb)
    repo = dynamo_readings(stuck, table_name, sleep=lambda _: None)
    with budget(RetryPolicy(attempts=3), None), pytest.raises(StorageUnavailableError):
        repo.batch_write([reading_item(reading(T0 + i)) for i in range(4)])
    assert len(stuck.calls["batch_write_item"]) == 3
    # And readings the table keeps throttling statement by statement: 503, after 3 rounds
    with budget(RetryPolicy(attempts=3), None), pytest.raises(StorageUnavailableError):
        repo.put_readings([reading(T0 + i) for i in range(4)])
    assert len(stuck.calls["batch_execute_statement"]) == 3


def history(count: int, at_ms: int) -> list[dict[str, Any]]:
    """`count` readings, one every 10 s, ending 1 s after `at_ms` (so both sides are filled)."""
    return [reading_item(reading(at_ms + 1000 - i * 10_000)) for i in range(count)]


def seed(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    """Fill the table fast: moto takes 1000 items per BatchWriteItem (DynamoDB would not)."""
    for start in range(0, len(items), 1000):
        requests = [{"PutRequest": {"Item": i}} for i in items[start : start + 1000]]
        assert not client.batch_write_item(RequestItems={table: requests})["UnprocessedItems"]


@pytest.mark.parametrize("history_size", [1_000, 10_000])
def test_the_window_query_reads_only_the_windows_items(
    own_client: Any, table_name: str, history_size: int
) -> None:
    dynamodb = own_client
    # Given a room with a long history (one reading every 10 s)
    at = T0 + 10 * 24 * 60 * MINUTE
    repo = dynamo_readings(dynamodb, table_name)
    seed(dynamodb, table_name, history(history_size, at))
    scanned: list[int] = []

    def count(parsed: dict[str, Any], **_: Any) -> None:
        scanned.append(parsed["ScannedCount"])

    dynamodb.meta.events.register("after-call.dynamodb.Query", count)
    # When the 15-minute window ending at `at` is read
    window = repo.window("t1", "hq", "r101", at - 15 * MINUTE, at)
    # Then DynamoDB examined exactly the window's 90 items, whatever the history's length
    assert len(window) == 90
    assert sum(scanned) == 90


def test_latest_ignores_other_item_types_in_the_room_partition(
    dynamodb: Any, table_name: str
) -> None:
    repo = dynamo_readings(dynamodb, table_name)
    repo.put_readings([reading(T0)])
    # Items of later issues sort outside [READINGS_LOW, READINGS_HIGH].
    for sk in ("@meta", "~rollup", "#x"):
        assert not keys.READINGS_LOW <= sk <= keys.READINGS_HIGH
        dynamodb.put_item(
            TableName=table_name,
            Item={"pk": {"S": keys.room_pk("t1", "hq", "r101")}, "sk": {"S": sk}},
        )
    latest = repo.latest("t1", "hq", "r101")
    assert latest is not None
    assert latest.ts_ms == T0


def test_a_missing_table_is_storage_unavailable(dynamodb: Any, table_name: str) -> None:
    repo = dynamo_readings(dynamodb, table_name)
    dynamodb.delete_table(TableName=table_name)
    with pytest.raises(StorageUnavailableError) as info:
        repo.ping()
    assert info.value.retry_after_s > 0
    with pytest.raises(StorageUnavailableError):
        repo.put_readings([reading()])
    with pytest.raises(StorageUnavailableError):
        repo.window("t1", "hq", "r101", T0 - 1, T0)


class ThrottledClient(ClientProxy):
    """Throttles every other call outright (what reaches us after botocore's retries ran out)."""

    def __init__(self, client: Any, error: str = "ThrottlingException") -> None:
        super().__init__(client)
        self.error = error
        self.throttled: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = super().__getattr__(name)
        if name not in {"query", "put_item", "batch_execute_statement", "batch_write_item"}:
            return method

        def call(**kwargs: Any) -> Any:
            count = len(self.calls.get(name, []))
            if count % 2 == 0:
                self.calls.setdefault(name, []).append(kwargs)
                self.throttled[name] = self.throttled.get(name, 0) + 1
                raise ClientError({"Error": {"Code": self.error, "Message": "slow down"}}, name)
            return method(**kwargs)

        return call


def test_throttled_calls_are_retried_one_by_one_and_nothing_is_counted_twice(
    dynamodb: Any, table_name: str
) -> None:
    # Given a table that throttles every call once before it answers
    throttled = ThrottledClient(dynamodb)
    repo = dynamo_readings(throttled, table_name, sleep=lambda _: None)
    batch = [reading(T0 + i * 7_000) for i in range(300)]
    # When a batch, one reading and the same batch again are written
    first = repo.put_readings(batch)
    single = repo.put_readings([reading(T0 + 10 * 24 * 60 * MINUTE)])
    again = repo.put_readings(batch)
    # Then each succeeds, every reading is stored once and the rollups count each once
    assert (first.accepted, single.accepted, again.duplicates) == (300, 1, 300)
    assert set(throttled.throttled) == {"put_item", "batch_execute_statement"}
    assert len(all_stored(dynamodb, table_name)) == 301
    # And the stream consumer's refresh (queries and batch writes) is retried the same way
    assert repo.refresh(batch, as_of_ms=T0) > 0
    assert {"query", "batch_write_item"} <= set(throttled.throttled)
    hours = repo.rollups("t1", "hq", "r101", Resolution.HOUR, T0 - 60 * MINUTE, T0 + 120 * MINUTE)
    assert sum(r.readings for _, r in hours) == 300


def test_a_call_refused_for_good_is_not_retried(dynamodb: Any, table_name: str) -> None:
    refused = ThrottledClient(dynamodb, error="ValidationException")
    repo = dynamo_readings(refused, table_name, sleep=lambda _: None)
    with pytest.raises(ClientError):
        repo.put_readings([reading(T0), reading(T0 + 1000)])
    assert refused.throttled == {"batch_execute_statement": 1}
