"""Rollup items in the room's partition, and how they are kept current: by recomputation.

Only the table's stream consumer writes rollups (services/rollups.py): for the readings of a
stream batch, each touched (room, minute) is recomputed from that minute's raw readings, and
each touched hour from its (<= 60) minute rollups; every item is an absolute value, never an
increment, so a replayed or retried batch can never skew an aggregate. A room's records all
come through one stream shard, in order, so one consumer at a time writes a room's rollups.
A stored minute rollup of more readings than its raw readings still hold (raw readings past their
retention are gone; their rollups are not) is kept. The newest hour a refresh writes carries
`asof`: every reading of the room written until then is counted (`freshness`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.aws import keys
from chalicelib.aws.dynamo import DynamoTable, Item
from chalicelib.aws.items import item_reading
from chalicelib.aws.retry import in_current_context
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

# Rollup refreshes of different minutes are independent: run a few at once (clients are
# thread-safe) so that a 1000-reading batch over many rooms stays within a Lambda's time.
# 1 for moto in-process (tests, benchmarks), which is not thread-safe.
REFRESH_THREADS = 8

# Minutes to re-read that lie closer than this share one Query. A room whose sensors send every
# 10 s holds ~50 readings a minute: a wider gap would read hundreds of untouched readings to save
# one small Query (late readings scattered over a day, at an hour's gap, re-read all of it).
REREAD_GAP_MS = 5 * MINUTE_MS

RoomMinute = tuple[str, int]  # a room's partition key, a minute's start


def _num(value: float | int) -> dict[str, str]:
    # repr round-trips a float exactly; DynamoDB keeps 38 significant digits.
    return {"N": repr(value)}


def rollup_item(pk: str, sk: str, rollup: Rollup, *, hour: bool) -> Item:
    """The item of one minute or hour rollup, in the room partition `pk`."""
    item: Item = {
        "pk": {"S": pk},
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


def room_of(reading: Reading) -> str:
    """The partition key of a reading's room."""
    return keys.room_pk(reading.tenant, reading.building, reading.room)


def touched(readings: Iterable[Reading]) -> list[RoomMinute]:
    """The distinct (room partition, minute start) the readings fall in, sorted."""
    return sorted({(room_of(r), floor_to(r.ts_ms, MINUTE_MS)) for r in readings})


Run = tuple[str, int, int]  # a room partition, the first and last start of consecutive periods


def runs(periods: Sequence[RoomMinute], width: int) -> list[Run]:
    """Consecutive periods of one room merged: (room partition, first start, last start)."""
    merged: list[Run] = []
    for pk, start in sorted(periods):
        if merged and merged[-1][0] == pk and merged[-1][2] + width == start:
            merged[-1] = (pk, merged[-1][1], start)
        else:
            merged.append((pk, start, start))
    return merged


def _groups(minutes: Sequence[int], gap: int = REREAD_GAP_MS) -> list[tuple[int, int]]:
    """Sorted minutes as (first, last) groups: a new group where they lie more than `gap` apart
    (one Query per group reads no long stretch of untouched readings)."""
    groups: list[tuple[int, int]] = []
    for minute in minutes:
        if groups and minute - groups[-1][1] <= gap:
            groups[-1] = (groups[-1][0], minute)
        else:
            groups.append((minute, minute))
    return groups


def _rollup_range(pk: str, resolution: Resolution, from_ms: int, to_ms: int) -> dict[str, Any]:
    """Query arguments for the room's rollups of `resolution` starting in [from_ms, to_ms)."""
    sk = keys.minute_sk if resolution is Resolution.MINUTE else keys.hour_sk
    last = to_ms - 1 - (to_ms - 1) % int(resolution)
    return {
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
        "ExpressionAttributeValues": {
            ":pk": {"S": pk},
            ":low": {"S": sk(from_ms)},
            ":high": {"S": sk(last)},
        },
    }


def seed_items(readings: Sequence[Reading], *, rooms: bool = True) -> list[Item]:
    """Rollup and room-index items of a bulk load, computed once in memory (benchmarks, imports).

    Only for loading history into an empty table (whole hours at a time); live writes go through
    put_readings. `rooms=False` leaves out the room-index items.
    """
    minutes: dict[RoomMinute, list[Reading]] = {}
    for reading in readings:
        minutes.setdefault((room_of(reading), floor_to(reading.ts_ms, MINUTE_MS)), []).append(
            reading
        )
    hours: dict[RoomMinute, list[Rollup]] = {}
    items: list[Item] = []
    for (pk, minute), group in sorted(minutes.items()):
        rollup = Rollup.of_readings(group, whole_minute=True)
        items.append(rollup_item(pk, keys.minute_sk(minute), rollup, hour=False))
        hours.setdefault((pk, floor_to(minute, HOUR_MS)), []).append(rollup)
    for (pk, hour), group_rollups in sorted(hours.items()):
        rollup = Rollup.of_minutes(group_rollups)
        items.append(rollup_item(pk, keys.hour_sk(hour), rollup, hour=True))
    if rooms:
        for tenant, building, room in sorted({(r.tenant, r.building, r.room) for r in readings}):
            items.append(room_index_item(tenant, building, room))
    return items


def room_index_item(tenant: str, building: str, room: str) -> Item:
    """A registry room item for `room` (bulk loads): what rooms_of lists."""
    doc = Room(tenant=tenant, building=building, room=room, name=room, metadata={}, created_ms=0)
    return {
        "pk": {"S": keys.building_rooms_pk(tenant, building)},
        "sk": {"S": keys.room_index_sk(room)},
        "doc": {"S": doc.model_dump_json()},
    }


class DynamoRollups:
    """Reads and refreshes rollup items; used by DynamoReadingRepository."""

    def __init__(self, table: DynamoTable, *, threads: int = REFRESH_THREADS) -> None:
        self._table = table
        self._threads = threads

    # -- writes (the stream consumer) ---------------------------------------------------------

    def refresh(self, readings: Sequence[Reading], *, as_of_ms: int) -> int:
        """Recompute every minute and hour rollup the readings touch; the items written.

        Per room and run of touched hours: one consistent Query of the hours' stored minute
        rollups; the touched minutes re-read from the table (one consistent Query per group of
        nearby minutes); minutes whose count changed and their hours are written with
        BatchWriteItem. A replayed batch finds nothing changed and writes nothing.
        """
        minutes = touched(readings)
        jobs = runs(sorted({(pk, floor_to(m, HOUR_MS)) for pk, m in minutes}), HOUR_MS)
        wanted: dict[str, list[int]] = {}
        for pk, minute in minutes:
            wanted.setdefault(pk, []).append(minute)
        written = self._run(lambda job: self._refresh_run(job, wanted, as_of_ms), jobs)
        return sum(written)

    def _run(self, work: Callable[[Run], int], jobs: list[Run]) -> list[int]:
        if len(jobs) <= 1 or self._threads <= 1:
            return [work(job) for job in jobs]
        with ThreadPoolExecutor(min(self._threads, len(jobs))) as pool:
            # list(): re-raises the first error of any job.
            return list(pool.map(in_current_context(work), jobs))

    def _refresh_run(self, job: Run, wanted: dict[str, list[int]], as_of_ms: int) -> int:
        pk, first_hour, last_hour = job
        end = last_hour + HOUR_MS
        stored = dict(self._rollup_items(pk, Resolution.MINUTE, first_hour, end, True))
        touched_minutes = [m for m in wanted[pk] if first_hour <= m < end]
        recomputed: dict[int, Rollup] = {}
        for low, high in _groups(touched_minutes):
            fresh = self._minute_rollups(pk, low, high)
            recomputed.update((m, fresh[m]) for m in touched_minutes if low <= m <= high)
        # A stored rollup of as many readings or more stays (raw readings may have expired).
        changed = {
            m: rollup
            for m, rollup in recomputed.items()
            if rollup.readings and (m not in stored or stored[m].readings < rollup.readings)
        }
        items = [
            rollup_item(pk, keys.minute_sk(m), rollup, hour=False) for m, rollup in changed.items()
        ]
        minutes = {**stored, **changed}
        newest = floor_to(max(touched_minutes), HOUR_MS)
        for hour in sorted({floor_to(m, HOUR_MS) for m in changed}):
            parts = (minutes.get(m) for m in range(hour, hour + HOUR_MS, MINUTE_MS))
            rollup = Rollup.of_minutes(p for p in parts if p is not None)
            item = rollup_item(pk, keys.hour_sk(hour), rollup, hour=True)
            if hour == newest:
                item["asof"] = {"N": str(as_of_ms)}
            items.append(item)
        self._table.batch_write(puts=items)
        return len(items)

    def _minute_rollups(self, pk: str, first: int, last: int) -> dict[int, Rollup]:
        """Each minute of [first, last] recomputed from its readings (one Query, consistent)."""
        low, high = keys.range_bounds(first, last + MINUTE_MS)
        items = self._table.query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":pk": {"S": pk},
                ":low": {"S": low},
                ":high": {"S": high},
            },
            ConsistentRead=True,
        )
        by_minute: dict[int, list[Reading]] = {m: [] for m in range(first, last + 1, MINUTE_MS)}
        for item in items:
            reading = item_reading(item)
            by_minute[floor_to(reading.ts_ms, MINUTE_MS)].append(reading)
        return {
            minute: Rollup.of_readings(group, whole_minute=True)
            for minute, group in by_minute.items()
        }

    # -- reads --------------------------------------------------------------------------------

    def rollups(
        self,
        tenant: str,
        building: str,
        room: str,
        resolution: Resolution,
        from_ms: int,
        to_ms: int,
    ) -> list[tuple[int, Rollup]]:
        """Stored rollups of `resolution` starting in [from_ms, to_ms): one Query."""
        pk = keys.room_pk(tenant, building, room)
        return self._rollup_items(pk, resolution, from_ms, to_ms, False)

    def _rollup_items(
        self, pk: str, resolution: Resolution, from_ms: int, to_ms: int, consistent: bool
    ) -> list[tuple[int, Rollup]]:
        if from_ms >= to_ms:
            return []
        items = self._table.query(
            **_rollup_range(pk, resolution, from_ms, to_ms), ConsistentRead=consistent
        )
        return [item_rollup(i) for i in items]

    def freshness(self, tenant: str, building: str, room: str) -> int | None:
        """`asof` of the room's newest hour rollup (None: no rollup yet): one Query, one item."""
        response = self._table.query_page(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :hour)",
            ExpressionAttributeValues={
                ":pk": {"S": keys.room_pk(tenant, building, room)},
                ":hour": {"S": keys.HOUR_PREFIX},
            },
            ProjectionExpression="asof",
            ScanIndexForward=False,
            Limit=1,
        )
        found = response.get("Items", [])
        if not found or "asof" not in found[0]:
            return None
        return int(found[0]["asof"]["N"])

    def rooms_of(self, tenant: str, building: str) -> list[str]:
        """The building's registered rooms (the registry's room items)."""
        items = self._table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :room)",
            ExpressionAttributeValues={
                ":pk": {"S": keys.building_rooms_pk(tenant, building)},
                ":room": {"S": keys.ROOM_PREFIX},
            },
            ProjectionExpression="sk",
        )
        return sorted(keys.parse_room_index_sk(i["sk"]["S"]) for i in items)
