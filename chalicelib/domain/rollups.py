"""Rollups: per-metric count, sum, sum of squares, min and max of a time bucket, and how to merge.

A minute rollup summarizes a room's readings of one UTC minute; an hour rollup merges that hour's
minute rollups and also keeps each minute's mean (so "minutes outside a comfort band" can be
answered for any band from hour items alone). Pure data and arithmetic: no storage here.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from chalicelib.domain.models import Metric, Reading

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
METRICS: tuple[Metric, ...] = tuple(Metric)


class Resolution(IntEnum):
    """The stored rollup levels, by their length in ms."""

    MINUTE = MINUTE_MS
    HOUR = HOUR_MS


def floor_to(ts_ms: int, step_ms: int) -> int:
    """The start of the `step_ms`-aligned (since the epoch, UTC) bucket holding `ts_ms`."""
    return ts_ms - ts_ms % step_ms


def ceil_to(ts_ms: int, step_ms: int) -> int:
    """The first `step_ms`-aligned instant at or after `ts_ms`."""
    return -floor_to(-ts_ms, step_ms)


@dataclass(slots=True)
class Aggregate:
    """Count, sum, sum of squares, min and max of one metric's values."""

    count: int = 0
    total: float = 0.0
    squares: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    @classmethod
    def of(cls, values: Sequence[float]) -> Aggregate:
        """The aggregate of `values`, summed exactly (fsum) before rounding once."""
        if not values:
            return cls()
        return cls(
            count=len(values),
            total=math.fsum(values),
            squares=math.fsum(v * v for v in values),
            low=min(values),
            high=max(values),
        )

    def merge(self, other: Aggregate) -> None:
        """Add `other` into this aggregate."""
        if not other.count:
            return
        self.count += other.count
        self.total += other.total
        self.squares += other.squares
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)

    @property
    def mean(self) -> float | None:
        """The mean, or None without values."""
        return self.total / self.count if self.count else None

    @property
    def stddev(self) -> float | None:
        """The population standard deviation, or None without values."""
        if not self.count:
            return None
        mean = self.total / self.count
        # Clamped: rounding can make a zero variance come out as -1e-16.
        return math.sqrt(max(0.0, self.squares / self.count - mean * mean))


@dataclass(slots=True)
class Rollup:
    """One bucket of one room: readings counted once each, and one Aggregate per metric.

    `readings` (how many readings the bucket holds) only grows, because readings are immutable and
    never deleted before their rollups: adapters use it as the version of a stored rollup.
    `minute_means[metric]` lists the means of the whole minutes the bucket holds (for comfort-band
    time); a minute rollup's is its own mean, a raw ragged edge adds none.
    """

    readings: int = 0
    metrics: dict[Metric, Aggregate] = field(default_factory=dict)
    minute_means: dict[Metric, list[float]] = field(default_factory=dict)

    @classmethod
    def of_readings(cls, readings: Iterable[Reading], *, whole_minute: bool) -> Rollup:
        """The rollup of raw readings; `whole_minute` when they are all of one whole minute."""
        rollup = cls()
        values: dict[Metric, list[float]] = {}
        for reading in readings:
            rollup.readings += 1
            for metric in METRICS:
                value = reading.value(metric)
                if value is not None:
                    values.setdefault(metric, []).append(value)
        for metric, vs in values.items():
            aggregate = Aggregate.of(vs)
            rollup.metrics[metric] = aggregate
            if whole_minute:
                rollup.minute_means[metric] = [aggregate.total / aggregate.count]
        return rollup

    @classmethod
    def of_minutes(cls, minutes: Iterable[Rollup]) -> Rollup:
        """The hour rollup of (up to 60) minute rollups."""
        rollup = cls()
        for minute in minutes:
            rollup.merge(minute)
        return rollup

    def merge(self, other: Rollup) -> None:
        """Add `other` (a disjoint bucket) into this rollup."""
        self.readings += other.readings
        for metric, aggregate in other.metrics.items():
            self.metrics.setdefault(metric, Aggregate()).merge(aggregate)
        for metric, means in other.minute_means.items():
            self.minute_means.setdefault(metric, []).extend(means)

    def metric(self, metric: Metric) -> Aggregate:
        """The aggregate of `metric` (empty if no reading measured it)."""
        return self.metrics.get(metric) or Aggregate()


RoomRun = tuple[str, str, int, int]  # building, room, first and last minute start (inclusive)
RoomMinute = tuple[str, str, int]  # building, room, minute start
CONTENDED = 2**62  # a frontier no minute lies beyond


class RollupLedger:
    """What a bulk load (a file) owes the rollups, and what it knows is not stored yet.

    Touched minutes are kept as runs of consecutive minutes per room, so that part grows with the
    runs, not the readings. A minute whose every noted reading was newly stored is "fresh": its
    readings are kept, so that the refresh can compute it without reading it back. A minute with
    a duplicate is "dirty": it is recomputed from the table. `minutes` and `readings` say when a
    refresh is due (a minute noted twice apart may count twice).

    The frontier of a room is the newest instant that may hold a reading this load did not store:
    the room's latest reading when the load first met it (a consistent lookup by the writer),
    moved past every minute this load refreshed. Readings in minutes after it need no duplicate
    check against the table. A refresh that finds another writer's rollup past the frontier
    marks the room contended: from then on its readings are all checked. A file of newer
    readings than its rooms hold (a daily export) is written without reading any reading back;
    older rows are checked as usual. (Two loads storing the same new readings of one room at the
    same time can both count them until one of them refreshes: see docs/decisions.md.)
    """

    def __init__(self) -> None:
        self._runs: dict[tuple[str, str], list[list[int]]] = {}
        self._fresh: dict[RoomMinute, dict[tuple[int, str], Reading]] = {}
        self._dirty: set[RoomMinute] = set()
        self._frontier: dict[tuple[str, str], int] = {}
        self._held: dict[tuple[str, str], tuple[int, dict[int, Rollup]]] = {}
        self._held_lock = threading.Lock()  # refresh jobs of one room run in parallel
        self.minutes = 0
        self.readings = 0

    # -- minute rollups of the last refreshed hour ------------------------------------------------

    def hold(self, building: str, room: str, hour: int, minutes: dict[int, Rollup]) -> None:
        """The minute rollups of the room's latest refreshed hour, as the refresh left them: the
        next refresh, which starts in that hour, need not read them again unless another writer
        changed them (their reading count tells)."""
        with self._held_lock:
            held = self._held.get((building, room))
            if held is None or held[0] <= hour:
                self._held[(building, room)] = (hour, dict(minutes))

    def held(self, building: str, room: str) -> dict[int, Rollup]:
        """The minute rollups held for the room (by start), or none."""
        found = self._held.get((building, room))
        return {} if found is None else found[1]

    # -- the frontier -----------------------------------------------------------------------------

    def contend(self, building: str, room: str) -> None:
        """Another writer is storing past the room's frontier: check every reading from now on."""
        self._frontier[(building, room)] = CONTENDED

    def knows(self, building: str, room: str) -> bool:
        """Whether the room's frontier is set."""
        return (building, room) in self._frontier

    def set_frontier(self, building: str, room: str, latest_ms: int | None) -> None:
        """The room's latest stored reading (None: it has none), looked up by the writer."""
        self._frontier[(building, room)] = -1 if latest_ms is None else latest_ms

    def beyond(self, building: str, room: str, minute: int) -> bool:
        """Whether the minute starts after the room's frontier (unknown frontier: no)."""
        frontier = self._frontier.get((building, room))
        return frontier is not None and minute > frontier

    def is_new(self, reading: Reading) -> bool | None:
        """True: surely not stored; False: a duplicate of a reading this load stored; None: ask
        the table."""
        minute = floor_to(reading.ts_ms, MINUTE_MS)
        if not self.beyond(reading.building, reading.room, minute):
            return None
        key = (reading.building, reading.room, minute)
        if key in self._dirty:
            return None
        fresh = self._fresh.get(key)
        return fresh is None or (reading.ts_ms, reading.sensor_id) not in fresh

    # -- touched minutes --------------------------------------------------------------------------

    def add(self, stored: Iterable[Reading], duplicates: Iterable[Reading] = ()) -> None:
        """Note the minutes of readings just stored and of readings found to be duplicates."""
        for reading in stored:
            key = self._note(reading)
            if key not in self._dirty:
                self._fresh.setdefault(key, {})[(reading.ts_ms, reading.sensor_id)] = reading
                self.readings += 1
        for reading in duplicates:
            key = self._note(reading)
            self._dirty.add(key)
            self.readings -= len(self._fresh.pop(key, ()))

    def _note(self, reading: Reading) -> RoomMinute:
        minute = floor_to(reading.ts_ms, MINUTE_MS)
        runs = self._runs.setdefault((reading.building, reading.room), [])
        if runs and runs[-1][0] <= minute <= runs[-1][1]:
            pass
        elif runs and minute == runs[-1][1] + MINUTE_MS:
            runs[-1][1] = minute
            self.minutes += 1
        else:
            runs.append([minute, minute])
            self.minutes += 1
        return (reading.building, reading.room, minute)

    def fresh(self, building: str, room: str, minute: int) -> list[Reading] | None:
        """The minute's readings if it is fresh (all newly stored), else None."""
        found = self._fresh.get((building, room, minute))
        return None if found is None else list(found.values())

    def noted(self, building: str, room: str, minute: int) -> bool:
        """Whether the minute was touched (fresh or dirty); runs also span untouched minutes."""
        key = (building, room, minute)
        return key in self._fresh or key in self._dirty

    def __bool__(self) -> bool:
        return bool(self._runs)

    def runs(self, max_minutes: int) -> list[RoomRun]:
        """The touched minutes as runs per room, no two of a room sharing an hour.

        Runs of a room that meet in one hour are joined (the minutes between them come along),
        and a long run is cut at hour boundaries into pieces of about `max_minutes`: so each hour
        is recomputed by exactly one run.
        """
        merged: list[RoomRun] = []
        for (building, room), runs in sorted(self._runs.items()):
            spans: list[list[int]] = []
            for first, last in sorted(runs):
                if spans and floor_to(first, HOUR_MS) <= floor_to(spans[-1][1], HOUR_MS):
                    spans[-1][1] = max(spans[-1][1], last)
                else:
                    spans.append([first, last])
            for first, last in spans:
                start = first
                while start <= last:
                    cut = floor_to(start + max_minutes * MINUTE_MS, HOUR_MS)
                    end = last if cut > last or cut <= start else cut - MINUTE_MS
                    merged.append((building, room, start, end))
                    start = end + MINUTE_MS
        return merged

    def clear(self) -> None:
        """Forget the touched minutes (after their refresh); the frontiers move past them."""
        for place, runs in self._runs.items():
            if place in self._frontier:
                last = max(end for _, end in runs) + MINUTE_MS - 1
                self._frontier[place] = max(self._frontier[place], last)
        self._runs.clear()
        self._fresh.clear()
        self._dirty.clear()
        self.minutes = self.readings = 0
