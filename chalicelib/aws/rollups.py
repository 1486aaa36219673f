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
    RollupLedger,
    floor_to,
)

# Rollup refreshes of different minutes are independent: run a few at once (clients are
# thread-safe) so that a 1000-reading batch over many rooms stays within a Lambda's time.
# 1 for moto in-process (tests, benchmarks), which is not thread-safe.
REFRESH_THREADS = 8

# Minutes per bulk refresh job (one Query): a day of a room's readings.
BULK_RUN_MINUTES = 1440
# Minutes to re-read that lie closer than this share one Query. A room whose sensors send every
# 10 s holds ~50 readings a minute: a wider gap would read hundreds of untouched readings to save
# one small Query (late readings scattered over a day, at an hour's gap, re-read all of it).
REREAD_GAP_MS = 5 * MINUTE_MS

RoomMinute = tuple[str, str, int]


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


def _rollup_range(
    building: str, room: str, resolution: Resolution, from_ms: int, to_ms: int
) -> dict[str, Any]:
    """Query arguments for the room's rollups of `resolution` starting in [from_ms, to_ms)."""
    sk = keys.minute_sk if resolution is Resolution.MINUTE else keys.hour_sk
    last = to_ms - 1 - (to_ms - 1) % int(resolution)
    return {
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
        "ExpressionAttributeValues": {
            ":pk": {"S": keys.room_pk(building, room)},
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
    if rooms:
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

    def __init__(self, table: DynamoTable, *, threads: int = REFRESH_THREADS) -> None:
        self._table = table
        self._threads = threads

    # -- writes -------------------------------------------------------------------------------

    def refresh(self, readings: Sequence[Reading]) -> None:
        """Recompute every minute and hour rollup the readings touch.

        One Query per room and run of consecutive touched minutes (and of hours), not one per
        minute: a batch of a room's readings costs a couple of reads, whatever it spans.
        (The rooms themselves are registered by the registry before readings are written.)
        Every call is retried on its own when throttled (the repository's `call`), and each
        PUT is absolute and guarded, so a retried refresh never skews an aggregate.
        """
        minutes = touched(readings)
        hours = sorted({(b, r, floor_to(m, HOUR_MS)) for b, r, m in minutes})
        self._run(self._refresh_minutes, runs(minutes, MINUTE_MS))
        self._run(self._refresh_hours, runs(hours, HOUR_MS))

    def refresh_bulk(self, ledger: RollupLedger) -> None:
        """Recompute the ledger's minutes and their hours, written with BatchWriteItem.

        Per room and run of minutes: one consistent Query of the keys and reading counts of the
        stored minute rollups of the run's hours (rollups the ledger holds from this load's last
        refresh with the same count are not read again; the others are read whole); a fresh
        minute (all its readings new) with no stored rollup is computed from the ledger's
        readings, every other touched minute from the table (a Query per group of such minutes);
        a stored rollup of as many readings or more is kept; the hours are then recomputed in
        memory. For bulk loads (files): no reading is read back when the minutes were new, and 25
        rollups go in each write call, instead of a Query and a conditional PUT per minute. These
        writes are not guarded: a live writer adding a reading to one of these minutes while the
        refresh runs can leave that minute one reading
        short until its next write (see docs/decisions.md).
        """
        self._run(lambda job: self._refresh_bulk_run(job, ledger), ledger.runs(BULK_RUN_MINUTES))

    def _run(self, work: Callable[[Run], None], jobs: list[Run]) -> None:
        if len(jobs) <= 1 or self._threads <= 1:
            for job in jobs:
                work(job)
            return
        with ThreadPoolExecutor(min(self._threads, len(jobs))) as pool:
            # list(): re-raises the first error of any job.
            list(pool.map(in_current_context(work), jobs))

    def _minute_rollups(self, building: str, room: str, first: int, last: int) -> dict[int, Rollup]:
        """Each minute of [first, last] recomputed from its readings (one Query, consistent)."""
        low, high = keys.range_bounds(first, last + MINUTE_MS)
        items = self._table.query(
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
        return {
            minute: Rollup.of_readings(group, whole_minute=True)
            for minute, group in by_minute.items()
        }

    def _refresh_minutes(self, job: Run) -> None:
        building, room, first, last = job
        for minute, rollup in self._minute_rollups(building, room, first, last).items():
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

    def _refresh_bulk_run(self, job: Run, ledger: RollupLedger) -> None:
        building, room, first, last = job
        first_hour, last_hour = floor_to(first, HOUR_MS), floor_to(last, HOUR_MS)
        # No other run of this refresh writes these minutes: the ledger gives each hour to one.
        # Every minute rollup of the hours is counted (one consistent Query of their key range,
        # keys and reading counts only): one another writer stored meanwhile sends its minute
        # back to the table. Those this load holds from its last refresh with the same count are
        # taken as held; the others are read whole.
        counts = self._minute_counts(building, room, first_hour, last_hour + HOUR_MS)
        if any(ledger.beyond(building, room, m) for m in counts):
            ledger.contend(building, room)  # not this load's rollup: someone else writes here
        held = ledger.held(building, room)
        stored = {m: held[m] for m, n in counts.items() if m in held and held[m].readings == n}
        for low, high in _groups(sorted(m for m in counts if m not in stored)):
            stored.update(
                (m, rollup)
                for m, rollup in self._rollup_items(
                    building, room, Resolution.MINUTE, low, high + MINUTE_MS, True
                )
                if m in counts and m not in stored
            )
        computed: dict[int, Rollup] = {}
        reread: list[int] = []
        for minute in range(first, last + 1, MINUTE_MS):
            fresh = ledger.fresh(building, room, minute)
            if fresh is not None and minute not in stored:
                computed[minute] = Rollup.of_readings(fresh, whole_minute=True)
            elif ledger.noted(building, room, minute):
                reread.append(minute)
        for low, high in _groups(reread):
            from_table = self._minute_rollups(building, room, low, high)
            computed.update((m, from_table[m]) for m in reread if low <= m <= high)
        # As the guard of live writes does: a stored rollup of as many readings or more stays
        # (raw readings past their retention are gone; their rollups are not).
        computed = {
            m: rollup
            for m, rollup in computed.items()
            if rollup.readings and (m not in stored or stored[m].readings < rollup.readings)
        }
        minutes = {**stored, **computed}
        items = [
            rollup_item(building, room, keys.minute_sk(m), rollup, hour=False)
            for m, rollup in computed.items()
        ]
        for hour in range(first_hour, last_hour + 1, HOUR_MS):
            parts = (minutes.get(m) for m in range(hour, hour + HOUR_MS, MINUTE_MS))
            rollup = Rollup.of_minutes(p for p in parts if p is not None)
            items.append(rollup_item(building, room, keys.hour_sk(hour), rollup, hour=True))
        self._table.batch_write(puts=items)
        ledger.hold(building, room, last_hour, {m: r for m, r in minutes.items() if m >= last_hour})

    def _minute_counts(self, building: str, room: str, from_ms: int, to_ms: int) -> dict[int, int]:
        """Reading count of each stored minute rollup starting in [from_ms, to_ms): one
        consistent Query that returns keys and counts only."""
        items = self._table.query(
            **_rollup_range(building, room, Resolution.MINUTE, from_ms, to_ms),
            ProjectionExpression="sk, #n",
            ExpressionAttributeNames={"#n": "n"},
            ConsistentRead=True,
        )
        return {keys.parse_rollup_sk(i["sk"]["S"]): int(i["n"]["N"]) for i in items}

    def _put(self, item: Item) -> None:
        # Never replace a rollup of more readings by one of fewer (a slower, older writer).
        self._table.put(
            item,
            ConditionExpression="attribute_not_exists(pk) OR n < :n",
            ExpressionAttributeValues={":n": item["n"]},
        )

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
        items = self._table.query(
            **_rollup_range(building, room, resolution, from_ms, to_ms), ConsistentRead=consistent
        )
        return [item_rollup(i) for i in items]

    def rooms_of(self, building: str) -> list[str]:
        """The building's registered rooms (the registry's room items)."""
        items = self._table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :room)",
            ExpressionAttributeValues={
                ":pk": {"S": keys.building_rooms_pk(building)},
                ":room": {"S": keys.ROOM_PREFIX},
            },
            ProjectionExpression="sk",
        )
        return sorted(keys.parse_room_index_sk(i["sk"]["S"]) for i in items)
