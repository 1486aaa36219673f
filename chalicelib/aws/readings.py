"""DynamoDB adapter of the reading repository (low-level client, one table)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import keys
from chalicelib.aws.items import Item, item_reading, key_tuple, reading_item, reading_key
from chalicelib.aws.rollups import DynamoRollups
from chalicelib.domain.errors import StorageUnavailableError
from chalicelib.domain.models import Position, Reading, WriteResult
from chalicelib.domain.rollups import Resolution, Rollup, RollupLedger

C = TypeVar("C")
R = TypeVar("R")
BATCH_WRITE_MAX = 25  # DynamoDB's limit per BatchWriteItem
BATCH_GET_MAX = 100  # DynamoDB's limit per BatchGetItem
_RETRYABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
}


def _busy(exc: StorageUnavailableError) -> bool:
    """Whether a 503 came from throttling or a server error (worth another try), not an outage."""
    cause = exc.__cause__
    return isinstance(cause, ClientError) and _code(cause) in _RETRYABLE


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def storage_errors() -> Iterator[None]:
    """Translate what boto3 raises when the table is unreachable, missing or throttling into 503."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _RETRYABLE:
            raise StorageUnavailableError("the table is busy; retry shortly", 2) from exc
        if code == "ResourceNotFoundException":
            raise StorageUnavailableError("the table is not available", 5) from exc
        raise
    except BotoCoreError as exc:
        raise StorageUnavailableError("the table cannot be reached; retry shortly", 2) from exc


class DynamoReadingRepository:
    """Readings in one DynamoDB table; idempotent writes by deterministic keys."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        retention_days: int = 0,
        max_attempts: int = 8,
        concurrency: int = 1,
        sleep: Callable[[float], None] = time.sleep,
        rollup_threads: int = 8,
    ) -> None:
        self._client = client
        self._table = table_name
        self._retention_s = retention_days * 86_400
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._concurrency = concurrency
        self._pool = ThreadPoolExecutor(concurrency, "dynamo") if concurrency > 1 else None
        self._rollups = DynamoRollups(
            client,
            table_name,
            self._query,
            call=self._call,
            batch_write=self.batch_write,
            threads=rollup_threads,
        )

    # -- writes ---------------------------------------------------------------------------

    def put_readings(
        self, readings: Sequence[Reading], *, deferred: RollupLedger | None = None
    ) -> WriteResult:
        """Store readings whose key is new; the first value stored wins, the rest are duplicates.

        Then the rollups of every minute they touch are recomputed, or, with `deferred`, the
        minutes are noted there for one bulk `refresh_rollups` later (file imports).
        """
        unique: dict[tuple[str, str], Reading] = {}
        for reading in readings:
            key = key_tuple(reading_key(reading))
            unique.setdefault(key, reading)
        in_request_duplicates = len(readings) - len(unique)
        if deferred is not None:
            new, old = self._put_noting(unique, deferred)
        elif len(unique) == 1:
            (reading,) = unique.values()
            stored = self._put_if_absent(reading)
            new, old = ([reading], []) if stored else ([], [reading])
        else:
            existing = self._existing_keys(list(unique))
            new = [r for k, r in unique.items() if k not in existing]
            old = [r for k, r in unique.items() if k in existing]
            self.batch_write([self._item(r) for r in new])
        # Duplicates too: a retry after a crash between the raw and the rollup write repairs it.
        if deferred is None:
            self._rollups.refresh(list(unique.values()))
        return WriteResult(accepted=len(new), duplicates=in_request_duplicates + len(old))

    def _put_noting(
        self, unique: dict[tuple[str, str], Reading], ledger: RollupLedger
    ) -> tuple[list[Reading], list[Reading]]:
        """Bulk write: readings past their room's frontier skip the duplicate check (nothing is
        stored there but what the ledger noted); the rest are checked with BatchGetItem. Their
        minutes go to the ledger. Return (stored, duplicates)."""
        for building, room in {(r.building, r.room) for r in unique.values()}:
            if not ledger.knows(building, room):
                self._set_frontier(ledger, building, room)
        new: list[Reading] = []
        old: list[Reading] = []
        ask: dict[tuple[str, str], Reading] = {}
        for key, reading in unique.items():
            verdict = ledger.is_new(reading)
            if verdict is None:
                ask[key] = reading
            else:
                (new if verdict else old).append(reading)
        existing = self._existing_keys(list(ask)) if ask else set()
        for key, reading in ask.items():
            (old if key in existing else new).append(reading)
        self.batch_write([self._item(r) for r in new])
        ledger.add(new, old)
        return new, old

    def refresh_rollups(self, ledger: RollupLedger) -> None:
        """Recompute the rollups of the ledger's minutes and their hours in bulk; clear it."""
        self._rollups.refresh_bulk(ledger)
        ledger.clear()

    def _set_frontier(self, ledger: RollupLedger, building: str, room: str) -> None:
        # Consistent: a segment starts right after the previous one's last write.
        latest = self.latest(building, room, consistent=True)
        ledger.set_frontier(building, room, latest.ts_ms if latest else None)

    def _item(self, reading: Reading) -> Item:
        expires = reading.ts_ms // 1000 + self._retention_s if self._retention_s else None
        return reading_item(reading, expires)

    def _put_if_absent(self, reading: Reading) -> bool:
        try:
            self._call(
                self._client.put_item,
                TableName=self._table,
                Item=self._item(reading),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _existing_keys(self, wanted: list[tuple[str, str]]) -> set[tuple[str, str]]:
        request_keys = [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in wanted]
        # Consistent: a retry may follow the write it repeats within a second.
        found = self._batch_get(request_keys, projection="pk, sk", consistent=True)
        return {key_tuple(i) for i in found}

    def _batch_get(
        self, request_keys: list[Item], *, projection: str | None = None, consistent: bool = False
    ) -> list[Item]:
        """The items of these keys that exist: BatchGetItem, 100 keys per call."""
        chunks = [
            request_keys[i : i + BATCH_GET_MAX] for i in range(0, len(request_keys), BATCH_GET_MAX)
        ]
        options: dict[str, Any] = {"ConsistentRead": consistent}
        if projection:
            options["ProjectionExpression"] = projection
        found: list[Item] = []
        for items in self._each(lambda chunk: self._get_chunk(chunk, options), chunks):
            found.extend(items)
        return found

    def _get_chunk(self, chunk: list[Item], options: dict[str, Any]) -> list[Item]:
        pending: dict[str, Any] = {self._table: {"Keys": chunk, **options}}
        found: list[Item] = []
        for attempt in range(self._max_attempts):
            response = self._call(self._client.batch_get_item, RequestItems=pending)
            found.extend(response.get("Responses", {}).get(self._table, []))
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                return found
            self._backoff(attempt)
        raise StorageUnavailableError("the table keeps throttling reads; retry shortly", 2)

    def batch_write(self, items: Sequence[Item]) -> None:
        """Put items in chunks of 25; retry UnprocessedItems with backoff until all are stored."""
        self._batch([{"PutRequest": {"Item": i}} for i in items])

    def _batch(self, requests: Sequence[dict[str, Any]]) -> None:
        chunks = [
            list(requests[i : i + BATCH_WRITE_MAX])
            for i in range(0, len(requests), BATCH_WRITE_MAX)
        ]
        for _ in self._each(self._write_chunk, chunks):
            pass

    def _write_chunk(self, chunk: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {self._table: chunk}
        for attempt in range(self._max_attempts):
            response = self._call(self._client.batch_write_item, RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            self._backoff(attempt)
        raise StorageUnavailableError("the table keeps throttling writes; retry shortly", 2)

    def _each(self, work: Callable[[C], R], chunks: list[C]) -> Iterator[R]:
        """`work` over the chunks: in turn, or `concurrency` at a time (boto3 clients are
        thread-safe). Requests overlap their round trips; the first error is raised."""
        if self._pool is None or len(chunks) <= 1:
            yield from map(work, chunks)
            return
        yield from self._pool.map(work, chunks)

    def _call(self, operation: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        """One API call; again, with backoff, while it is throttled or fails on the server side
        (after botocore's own retries), up to max_attempts times. Every call is idempotent (reads,
        conditional or deterministic-key writes), so a retry never counts anything twice. An
        unreachable or missing table is not retried here: the caller gets its 503 at once."""
        attempts = 0
        while True:
            try:
                with storage_errors():
                    return operation(**kwargs)
            except StorageUnavailableError as exc:
                attempts += 1
                if not _busy(exc) or attempts >= self._max_attempts:
                    raise
            self._backoff(attempts - 1)

    def _backoff(self, attempt: int) -> None:
        # Full jitter, capped: spreads retries of many writers apart.
        self._sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))

    # -- reads ----------------------------------------------------------------------------

    def _query(self, **kwargs: Any) -> Iterator[Item]:
        kwargs["TableName"] = self._table
        while True:
            response = self._call(self._client.query, **kwargs)
            yield from response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def window(self, building: str, room: str, after_ms: int, until_ms: int) -> list[Reading]:
        """Readings with after_ms < ts <= until_ms: one Query that reads only the window."""
        low, high = keys.window_bounds(after_ms, until_ms)
        items = self._query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":pk": {"S": keys.room_pk(building, room)},
                ":low": {"S": low},
                ":high": {"S": high},
            },
        )
        return [item_reading(i) for i in items]

    def latest(self, building: str, room: str, *, consistent: bool = False) -> Reading | None:
        """The newest reading: a reverse Query with Limit 1."""
        items = self._one_reading(building, room, ScanIndexForward=False, ConsistentRead=consistent)
        return item_reading(items[0]) if items else None

    def _one_reading(self, building: str, room: str, **options: Any) -> list[Item]:
        """A Query of the room's readings (not its rollups) that reads at most one item."""
        response = self._call(
            self._client.query,
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":pk": {"S": keys.room_pk(building, room)},
                ":low": {"S": keys.READINGS_LOW},
                ":high": {"S": keys.READINGS_HIGH},
            },
            Limit=1,
            **options,
        )
        return list(response.get("Items", []))

    def page(
        self,
        building: str,
        room: str,
        from_ms: int,
        to_ms: int,
        limit: int,
        after: Position | None,
    ) -> tuple[list[Reading], bool]:
        """Up to `limit` readings of [from, to) after `after`; reads at most limit + 1 items."""
        low, high = keys.range_bounds(from_ms, to_ms)
        pk = keys.room_pk(building, room)
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":pk": {"S": pk},
                ":low": {"S": low},
                ":high": {"S": high},
            },
            "Limit": limit + 1,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = {
                "pk": {"S": pk},
                "sk": {"S": keys.reading_sk(after.ts_ms, after.sensor_id)},
            }
        found: list[Reading] = []
        for item in self._query(**kwargs):
            found.append(item_reading(item))
            if len(found) > limit:
                break
        return found[:limit], len(found) > limit

    def has_readings(self, building: str, room: str) -> bool:
        """Whether the room holds any reading: a Query that reads at most one item."""
        return bool(self._one_reading(building, room, ProjectionExpression="pk"))

    def delete_room_data(self, building: str, room: str) -> int:
        """Delete every item of the room's partition (readings and aggregates), 25 per request."""
        items = self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.room_pk(building, room)}},
            ProjectionExpression="pk, sk",
        )
        requests = [{"DeleteRequest": {"Key": item}} for item in items]
        self._batch(requests)
        return len(requests)

    def rollups(
        self, building: str, room: str, resolution: Resolution, from_ms: int, to_ms: int
    ) -> list[tuple[int, Rollup]]:
        """Stored minute or hour rollups starting in [from_ms, to_ms): one Query."""
        return self._rollups.rollups(building, room, resolution, from_ms, to_ms)

    def rooms_of(self, building: str) -> list[str]:
        """The building's rooms that have readings (the registry will own this list)."""
        return self._rollups.rooms_of(building)

    def ping(self) -> None:
        """DescribeTable: raises StorageUnavailableError if the table is missing or unreachable."""
        with storage_errors():
            self._client.describe_table(TableName=self._table)
