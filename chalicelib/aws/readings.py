"""DynamoDB adapter of the reading and rollup repositories: readings and their rollups in the
one table. The request path writes readings only; rollups are refreshed by the stream consumer."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from chalicelib.aws import keys
from chalicelib.aws.dynamo import DynamoTable, Item
from chalicelib.aws.items import item_reading, key_tuple, reading_item, reading_key
from chalicelib.aws.rollups import DynamoRollups
from chalicelib.domain.models import Metric, Position, Reading, WriteResult
from chalicelib.domain.rollups import Resolution, Rollup


class DynamoReadingRepository:
    """Readings in one DynamoDB table; idempotent writes by deterministic keys."""

    def __init__(
        self,
        table: DynamoTable,
        *,
        retention_days: int = 0,
        rollup_threads: int = 8,
    ) -> None:
        self._table = table
        self._retention_s = retention_days * 86_400
        self._rollups = DynamoRollups(table, threads=rollup_threads)

    # -- writes ---------------------------------------------------------------------------

    def put_readings(self, readings: Sequence[Reading]) -> WriteResult:
        """Store readings whose key is new; the first value stored wins, the rest are duplicates.

        One reading: one conditional PutItem. A batch: conditional PartiQL INSERTs, 25 a call,
        each refused when its key is taken, so two writers of one reading can never both store
        it, whatever the interleaving. Nothing else is written: the table's stream brings the
        new readings to the rollups (services/rollups.py).
        """
        unique: dict[tuple[str, str], Reading] = {}
        for reading in readings:
            unique.setdefault(key_tuple(reading_key(reading)), reading)
        in_request_duplicates = len(readings) - len(unique)
        # This write's token: a retried call whose first attempt stored a reading (its answer
        # lost) recognises the reading as its own, so the counts stay true.
        token = secrets.token_hex(6)
        items = [self._item(r, token) for r in unique.values()]
        if len(items) == 1:
            written = [self._table.put_if_absent(items[0], token=keys.WRITE_TOKEN)]
        else:
            written = self._table.insert_new(items, token=keys.WRITE_TOKEN)
        accepted = sum(written)
        return WriteResult(
            accepted=accepted, duplicates=in_request_duplicates + len(unique) - accepted
        )

    def _item(self, reading: Reading, token: str | None = None) -> Item:
        expires = reading.ts_ms // 1000 + self._retention_s if self._retention_s else None
        item = reading_item(reading, expires)
        if token is not None:
            item[keys.WRITE_TOKEN] = {"S": token}
        return item

    def batch_write(self, items: Sequence[Item]) -> None:
        """Put items, 25 a call, until every one is stored (bulk loads of history)."""
        self._table.batch_write(puts=items)

    # -- reads ----------------------------------------------------------------------------

    def window(
        self,
        tenant: str,
        building: str,
        room: str,
        after_ms: int,
        until_ms: int,
        metric: Metric | None = None,
    ) -> list[Reading]:
        """Readings with after_ms < ts <= until_ms: one Query that reads only the window (and,
        with `metric`, only the keys and that metric of each reading)."""
        low, high = keys.window_bounds(after_ms, until_ms)
        options: dict[str, Any] = {}
        if metric is not None:
            options["ProjectionExpression"] = "pk, sk, #m"
            options["ExpressionAttributeNames"] = {"#m": metric.value}
        items = self._table.query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":pk": {"S": keys.room_pk(tenant, building, room)},
                ":low": {"S": low},
                ":high": {"S": high},
            },
            **options,
        )
        return [item_reading(i) for i in items]

    def latest(
        self, tenant: str, building: str, room: str, *, consistent: bool = False
    ) -> Reading | None:
        """The newest reading: a reverse Query with Limit 1."""
        items = self._one_reading(
            tenant, building, room, ScanIndexForward=False, ConsistentRead=consistent
        )
        return item_reading(items[0]) if items else None

    def _one_reading(self, tenant: str, building: str, room: str, **options: Any) -> list[Item]:
        """A Query of the room's readings (not its rollups) that reads at most one item."""
        response = self._table.query_page(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":pk": {"S": keys.room_pk(tenant, building, room)},
                ":low": {"S": keys.READINGS_LOW},
                ":high": {"S": keys.READINGS_HIGH},
            },
            Limit=1,
            **options,
        )
        return list(response.get("Items", []))

    def page(
        self,
        tenant: str,
        building: str,
        room: str,
        from_ms: int,
        to_ms: int,
        limit: int,
        after: Position | None,
    ) -> tuple[list[Reading], bool]:
        """Up to `limit` readings of [from, to) after `after`; reads at most limit + 1 items."""
        low, high = keys.range_bounds(from_ms, to_ms)
        pk = keys.room_pk(tenant, building, room)
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
        for item in self._table.query(**kwargs):
            found.append(item_reading(item))
            if len(found) > limit:
                break
        return found[:limit], len(found) > limit

    def has_readings(self, tenant: str, building: str, room: str) -> bool:
        """Whether the room holds any reading: a Query that reads at most one item."""
        return bool(self._one_reading(tenant, building, room, ProjectionExpression="pk"))

    def delete_room_data(self, tenant: str, building: str, room: str) -> int:
        """Delete every item of the room's partition (readings and aggregates), 25 per request."""
        items = self._table.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.room_pk(tenant, building, room)}},
            ProjectionExpression="pk, sk",
        )
        found = list(items)
        self._table.batch_write(deletes=found)
        return len(found)

    def rollups(
        self,
        tenant: str,
        building: str,
        room: str,
        resolution: Resolution,
        from_ms: int,
        to_ms: int,
    ) -> list[tuple[int, Rollup]]:
        """Stored minute or hour rollups starting in [from_ms, to_ms): one Query."""
        return self._rollups.rollups(tenant, building, room, resolution, from_ms, to_ms)

    def rooms_of(self, tenant: str, building: str) -> list[str]:
        """The building's registered rooms."""
        return self._rollups.rooms_of(tenant, building)

    def refresh(self, readings: Sequence[Reading], *, as_of_ms: int) -> int:
        """Bring the rollups of the readings' minutes and hours up to date (stream consumer);
        the number of rollup items written."""
        return self._rollups.refresh(readings, as_of_ms=as_of_ms)

    def freshness(self, tenant: str, building: str, room: str) -> int | None:
        """Until when (epoch ms of a write) the room's rollups hold every reading written."""
        return self._rollups.freshness(tenant, building, room)

    def ping(self) -> None:
        """DescribeTable: raises StorageUnavailableError if the table is missing or unreachable."""
        self._table.ping()
