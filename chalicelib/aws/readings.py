"""DynamoDB adapter of the reading repository: readings and their rollups in the one table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.aws import keys
from chalicelib.aws.dynamo import DynamoTable, Item
from chalicelib.aws.items import item_reading, key_tuple, reading_item, reading_key
from chalicelib.aws.rollups import DynamoRollups
from chalicelib.domain.models import Position, Reading, WriteResult
from chalicelib.domain.rollups import Resolution, Rollup, RollupLedger


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
        return self._table.put_if_absent(self._item(reading))

    def _existing_keys(self, wanted: list[tuple[str, str]]) -> set[tuple[str, str]]:
        request_keys = [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in wanted]
        # Consistent: a retry may follow the write it repeats within a second.
        found = self._table.batch_get(request_keys, projection="pk, sk", consistent=True)
        return {key_tuple(i) for i in found}

    def batch_write(self, items: Sequence[Item]) -> None:
        """Put items, 25 a call, until every one is stored."""
        self._table.batch_write(puts=items)

    # -- reads ----------------------------------------------------------------------------

    def window(self, building: str, room: str, after_ms: int, until_ms: int) -> list[Reading]:
        """Readings with after_ms < ts <= until_ms: one Query that reads only the window."""
        low, high = keys.window_bounds(after_ms, until_ms)
        items = self._table.query(
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
        response = self._table.query_page(
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
        for item in self._table.query(**kwargs):
            found.append(item_reading(item))
            if len(found) > limit:
                break
        return found[:limit], len(found) > limit

    def has_readings(self, building: str, room: str) -> bool:
        """Whether the room holds any reading: a Query that reads at most one item."""
        return bool(self._one_reading(building, room, ProjectionExpression="pk"))

    def delete_room_data(self, building: str, room: str) -> int:
        """Delete every item of the room's partition (readings and aggregates), 25 per request."""
        items = self._table.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.room_pk(building, room)}},
            ProjectionExpression="pk, sk",
        )
        found = list(items)
        self._table.batch_write(deletes=found)
        return len(found)

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
        self._table.ping()
