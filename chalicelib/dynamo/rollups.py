"""Rollup items in the room's partition, and how they are kept current: by recomputation.

After readings are written (or found to be duplicates), every (room, minute) they touch is
recomputed from that minute's raw readings and PUT as an absolute value; then every touched hour is
recomputed from its (<= 60) minute items. Nothing is ever incremented, so a duplicate, a retried
batch or a crash between the raw write and the rollup write can never skew an aggregate.
Concurrent writers converge: each PUT is conditional on the stored rollup holding fewer readings
(readings only ever get added, so a later, larger recomputation always wins; see decisions.md).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.domain.models import Reading
from chalicelib.domain.registry import Room
from chalicelib.domain.rollups import (
    HOUR_MS,
    METRICS,
    MINUTE_MS,
    Aggregate,
    Resolution,
    Rollup,
    floor_to,
)
from chalicelib.dynamo import keys
from chalicelib.dynamo.items import Item, item_reading
from chalicelib.dynamo.repository import storage_errors

# Rollup refreshes of different minutes are independent: run a few at once (clients are
# thread-safe) so that a 1000-reading batch over many rooms stays within a Lambda's time.
# 1 for moto in-process (tests, benchmarks), which is not thread-safe.
REFRESH_THREADS = 8

RoomMinute = tuple[str, str, int]
QueryFn = Callable[..., Iterator[Item]]


def _num(value: float | int) -> dict[str, str]:
    # repr round-trips a float exactly; DynamoDB keeps 38 significant digits.
    return {"N": repr(value)}


def rollup_item(building: str, room: str, sk: str, rollup: Rollup, *, hour: bool) -> Item:
    """The item of one minute or hour rollup."""
    item: Item = {
        "pk": {"S": keys.room_pk(building, room)},
        "sk": {"S": sk},
        "n": {"N": str(rollup.readings)},
    }
    for metric, agg in rollup.metrics.items():
        if not agg.count:
            continue
        fields: dict[str, Any] = {
            "c": {"N": str(agg.count)},
            "s": _num(agg.total),
            "q": _num(agg.squares),
            "lo": _num(agg.low),
            "hi": _num(agg.high),
        }
        if hour:
            means = rollup.minute_means.get(metric, [])
            # Packed float64s: exact, and 60 minutes fit in 480 bytes (one write unit with keys).
            fields["mm"] = {"B": struct.pack(f"<{len(means)}d", *means)}
        item[metric.value] = {"M": fields}
    return item


def item_rollup(item: Item) -> tuple[int, Rollup]:
    """(start ms, rollup) of a minute or hour item."""
    sk = item["sk"]["S"]
    hour = keys.is_hour_sk(sk)
    rollup = Rollup(readings=int(item["n"]["N"]))
    for metric in METRICS:
        if metric.value not in item:
            continue
        fields = item[metric.value]["M"]
        agg = Aggregate(
            count=int(fields["c"]["N"]),
            total=float(fields["s"]["N"]),
            squares=float(fields["q"]["N"]),
            low=float(fields["lo"]["N"]),
            high=float(fields["hi"]["N"]),
        )
        rollup.metrics[metric] = agg
        if hour:
            packed = fields["mm"]["B"]
            rollup.minute_means[metric] = list(struct.unpack(f"<{len(packed) // 8}d", packed))
        else:
            rollup.minute_means[metric] = [agg.total / agg.count]
    return keys.parse_rollup_sk(sk), rollup


def touched(readings: Iterable[Reading]) -> list[RoomMinute]:
    """The distinct (building, room, minute start) the readings fall in, sorted."""
    return sorted({(r.building, r.room, floor_to(r.ts_ms, MINUTE_MS)) for r in readings})


Run = tuple[str, str, int, int]  # building, room, first and last start of consecutive periods


def runs(periods: Sequence[RoomMinute], width: int) -> list[Run]:
    """Consecutive periods of one room merged: (building, room, first start, last start)."""
    merged: list[Run] = []
    for building, room, start in sorted(periods):
        if merged and merged[-1][:2] == (building, room) and merged[-1][3] + width == start:
            merged[-1] = (building, room, merged[-1][2], start)
        else:
            merged.append((building, room, start, start))
    return merged


def seed_items(readings: Sequence[Reading]) -> list[Item]:
    """Rollup and room-index items of a bulk load, computed once in memory (benchmarks, imports).

    Only for loading history into an empty table; live writes go through put_readings.
    """
    minutes: dict[RoomMinute, list[Reading]] = {}
    for reading in readings:
        key = (reading.building, reading.room, floor_to(reading.ts_ms, MINUTE_MS))
        minutes.setdefault(key, []).append(reading)
    hours: dict[RoomMinute, list[Rollup]] = {}
    items: list[Item] = []
    for (building, room, minute), group in sorted(minutes.items()):
        rollup = Rollup.of_readings(group, whole_minute=True)
        items.append(rollup_item(building, room, keys.minute_sk(minute), rollup, hour=False))
        hours.setdefault((building, room, floor_to(minute, HOUR_MS)), []).append(rollup)
    for (building, room, hour), group_rollups in sorted(hours.items()):
        rollup = Rollup.of_minutes(group_rollups)
        items.append(rollup_item(building, room, keys.hour_sk(hour), rollup, hour=True))
    for building, room in sorted({(r.building, r.room) for r in readings}):
        items.append(room_index_item(building, room))
    return items


def room_index_item(building: str, room: str) -> Item:
    """A registry room item for `room` (bulk loads): what rooms_of lists."""
    doc = Room(building=building, room=room, name=room, metadata={}, created_ms=0)
    return {
        "pk": {"S": keys.building_rooms_pk(building)},
        "sk": {"S": keys.room_index_sk(room)},
        "doc": {"S": doc.model_dump_json()},
    }


class DynamoRollups:
    """Reads and refreshes rollup items; used by DynamoReadingRepository."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        query: QueryFn,
        *,
        threads: int = REFRESH_THREADS,
        retry: Callable[[Callable[[], None]], None] = lambda work: work(),
    ) -> None:
        self._retry = retry
        self._client = client
        self._threads = threads
        self._table = table_name
        self._query = query

    # -- writes -------------------------------------------------------------------------------

    def refresh(self, readings: Sequence[Reading]) -> None:
        """Recompute every minute and hour rollup the readings touch.

        One Query per room and run of consecutive touched minutes (and of hours), not one per
        minute: a batch of a room's readings costs a couple of reads, whatever it spans.
        (The rooms themselves are registered by the registry before readings are written.)
        """
        minutes = touched(readings)
        hours = sorted({(b, r, floor_to(m, HOUR_MS)) for b, r, m in minutes})
        self._run(self._refresh_minutes, runs(minutes, MINUTE_MS))
        self._run(self._refresh_hours, runs(hours, HOUR_MS))

    def _run(self, work: Callable[[Run], None], jobs: list[Run]) -> None:
        # Each job recomputes from what is stored, so a failed one is simply run again: a
        # throttled rollup write must not fail a request whose readings are already stored.
        def attempt(job: Run) -> None:
            self._retry(lambda: work(job))

        if len(jobs) <= 1 or self._threads <= 1:
            for job in jobs:
                attempt(job)
            return
        with ThreadPoolExecutor(min(self._threads, len(jobs))) as pool:
            # list(): re-raises the first error of any job.
            list(pool.map(attempt, jobs))

    def _refresh_minutes(self, job: Run) -> None:
        building, room, first, last = job
        low, high = keys.range_bounds(first, last + MINUTE_MS)
        items = self._query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":pk": {"S": keys.room_pk(building, room)},
                ":low": {"S": low},
                ":high": {"S": high},
            },
            ConsistentRead=True,
        )
        by_minute: dict[int, list[Reading]] = {m: [] for m in range(first, last + 1, MINUTE_MS)}
        for item in items:
            reading = item_reading(item)
            by_minute[floor_to(reading.ts_ms, MINUTE_MS)].append(reading)
        for minute, group in by_minute.items():
            rollup = Rollup.of_readings(group, whole_minute=True)
            self._put(rollup_item(building, room, keys.minute_sk(minute), rollup, hour=False))

    def _refresh_hours(self, job: Run) -> None:
        building, room, first, last = job
        minutes = self._rollup_items(building, room, Resolution.MINUTE, first, last + HOUR_MS, True)
        by_hour: dict[int, list[Rollup]] = {h: [] for h in range(first, last + 1, HOUR_MS)}
        for start, rollup in minutes:
            by_hour[floor_to(start, HOUR_MS)].append(rollup)
        for hour, group in by_hour.items():
            rollup = Rollup.of_minutes(group)
            self._put(rollup_item(building, room, keys.hour_sk(hour), rollup, hour=True))

    def _put(self, item: Item, *, guarded: bool = True) -> None:
        kwargs: dict[str, Any] = {"TableName": self._table, "Item": item}
        if guarded:
            # Never replace a rollup of more readings by one of fewer (a slower, older writer).
            kwargs["ConditionExpression"] = "attribute_not_exists(pk) OR n < :n"
            kwargs["ExpressionAttributeValues"] = {":n": item["n"]}
        with storage_errors():
            try:
                self._client.put_item(**kwargs)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise

    # -- reads --------------------------------------------------------------------------------

    def rollups(
        self, building: str, room: str, resolution: Resolution, from_ms: int, to_ms: int
    ) -> list[tuple[int, Rollup]]:
        """Stored rollups of `resolution` starting in [from_ms, to_ms): one Query."""
        return self._rollup_items(building, room, resolution, from_ms, to_ms, False)

    def _rollup_items(
        self,
        building: str,
        room: str,
        resolution: Resolution,
        from_ms: int,
        to_ms: int,
        consistent: bool,
    ) -> list[tuple[int, Rollup]]:
        if from_ms >= to_ms:
            return []
        sk = keys.minute_sk if resolution is Resolution.MINUTE else keys.hour_sk
        last = to_ms - 1 - (to_ms - 1) % int(resolution)
        items = self._query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":pk": {"S": keys.room_pk(building, room)},
                ":low": {"S": sk(from_ms)},
                ":high": {"S": sk(last)},
            },
            ConsistentRead=consistent,
        )
        return [item_rollup(i) for i in items]

    def rooms_of(self, building: str) -> list[str]:
        """The building's registered rooms (the registry's room items)."""
        items = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :room)",
            ExpressionAttributeValues={
                ":pk": {"S": keys.building_rooms_pk(building)},
                ":room": {"S": keys.ROOM_PREFIX},
            },
            ProjectionExpression="sk",
        )
        return sorted(keys.parse_room_index_sk(i["sk"]["S"]) for i in items)
