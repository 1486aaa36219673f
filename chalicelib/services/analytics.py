"""Use cases over rollups: time series, statistics, building averages. No Chalice, no boto3.

Every query splits its period into pieces: whole hours come from hour rollups, whole minutes from
minute rollups, and only the sub-minute ragged edges of the period from raw readings. So the items
read grow with the number of hours (plus <= 2 x 59 minutes and 2 partial minutes), not readings.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import FIXED_METRIC_UNITS, Metric
from chalicelib.domain.reports import Band
from chalicelib.domain.rollups import (
    HOUR_MS,
    MINUTE_MS,
    Aggregate,
    Resolution,
    Rollup,
    ceil_to,
    floor_to,
)
from chalicelib.domain.timeutil import format_ms
from chalicelib.domain.units import TemperatureUnit, from_celsius, to_celsius
from chalicelib.ports import RollupRepository

MAX_BUCKETS = 2000
MAX_STATS_DAYS = 366
MAX_AVERAGE_MINUTES = 1440


class Interval(StrEnum):
    """Series bucket lengths; buckets are aligned to UTC (days start at 00:00Z)."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    D1 = "1d"


INTERVAL_MS = {
    Interval.M1: MINUTE_MS,
    Interval.M5: 5 * MINUTE_MS,
    Interval.M15: 15 * MINUTE_MS,
    Interval.H1: HOUR_MS,
    Interval.D1: 24 * HOUR_MS,
}

Range = tuple[int, int]


# -- the one place rollups and raw readings are combined -------------------------------------


def _coalesce(ranges: list[Range]) -> list[Range]:
    """Sorted ranges with touching neighbours joined: one Query per contiguous run."""
    joined: list[Range] = []
    for start, end in sorted(ranges):
        if joined and joined[-1][1] == start:
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return joined


def plan(edges: Sequence[int]) -> tuple[list[Range], list[Range], list[Range]]:
    """Hour, minute and raw ranges that cover the buckets [edges[i], edges[i+1]) exactly.

    Each piece lies inside one bucket: whole hours, then whole minutes, then raw readings of
    the partial minutes (only where a bucket edge is not minute-aligned).
    """
    hours: list[Range] = []
    minutes: list[Range] = []
    raw: list[Range] = []
    for a, b in itertools.pairwise(edges):
        am, bm = ceil_to(a, MINUTE_MS), floor_to(b, MINUTE_MS)
        if am >= bm:
            raw.append((a, b))
            continue
        if a < am:
            raw.append((a, am))
        if bm < b:
            raw.append((bm, b))
        ah, bh = ceil_to(am, HOUR_MS), floor_to(bm, HOUR_MS)
        if ah < bh:
            hours.append((ah, bh))
            minutes.extend(r for r in ((am, ah), (bh, bm)) if r[0] < r[1])
        else:
            minutes.append((am, bm))
    return _coalesce(hours), _coalesce(minutes), _coalesce(raw)


def collect(repo: RollupRepository, building: str, room: str, edges: Sequence[int]) -> list[Rollup]:
    """One rollup per bucket [edges[i], edges[i+1]), exact, from the fewest items plan() allows."""
    buckets = [Rollup() for _ in edges[1:]]

    def bucket_of(ts_ms: int) -> Rollup:
        return buckets[bisect.bisect_right(edges, ts_ms) - 1]

    hours, minutes, raw = plan(edges)
    for resolution, ranges in ((Resolution.HOUR, hours), (Resolution.MINUTE, minutes)):
        for start, end in ranges:
            for bucket_start, rollup in repo.rollups(building, room, resolution, start, end):
                bucket_of(bucket_start).merge(rollup)
    for start, end in raw:
        readings = repo.window(building, room, start - 1, end - 1)
        by_bucket: dict[int, list[Any]] = {}
        for reading in readings:
            by_bucket.setdefault(bisect.bisect_right(edges, reading.ts_ms) - 1, []).append(reading)
        for index, group in by_bucket.items():
            buckets[index].merge(Rollup.of_readings(group, whole_minute=False))
    return buckets


def series_edges(from_ms: int, to_ms: int, step_ms: int) -> tuple[list[int], list[int]]:
    """(aligned bucket starts, edges clipped to [from, to)) of a series."""
    if from_ms >= to_ms:
        raise ValidationError("from: must be before to")
    first = floor_to(from_ms, step_ms)
    count = -(-(to_ms - first) // step_ms)
    if count > MAX_BUCKETS:
        raise ValidationError(
            f"interval: {count} buckets asked, at most {MAX_BUCKETS}; widen the interval"
        )
    starts = [first + i * step_ms for i in range(count)]
    return starts, [from_ms, *starts[1:], to_ms]


# -- presentation in the asked unit ------------------------------------------------------------


def metric_unit(metric: Metric, unit: TemperatureUnit) -> str:
    """The unit a metric's values are given in."""
    return unit.value if metric is Metric.TEMPERATURE else FIXED_METRIC_UNITS[metric]


def _out(value: float | None, metric: Metric, unit: TemperatureUnit) -> float | None:
    if value is None or metric is not Metric.TEMPERATURE:
        return value
    return from_celsius(value, unit)


def _spread(value: float | None, metric: Metric, unit: TemperatureUnit) -> float | None:
    # A difference converts by scale only: 1 K = 1 °C = 1.8 °F.
    if value is None or metric is not Metric.TEMPERATURE or unit is not TemperatureUnit.F:
        return value
    return value * 9.0 / 5.0


def _threshold(value: float | None, metric: Metric, unit: TemperatureUnit) -> float | None:
    if value is None or metric is not Metric.TEMPERATURE:
        return value
    return to_celsius(value, unit)


def bucket_json(
    start_ms: int, agg: Aggregate, metric: Metric, unit: TemperatureUnit
) -> dict[str, Any]:
    """One series bucket as the API shows it."""
    return {
        "start": format_ms(start_ms),
        "count": agg.count,
        "average": _out(agg.mean, metric, unit),
        "min": _out(agg.low if agg.count else None, metric, unit),
        "max": _out(agg.high if agg.count else None, metric, unit),
    }


@dataclass(frozen=True, slots=True)
class Stats:
    """Statistics of one metric over a period: exact moments plus comfort-band minutes."""

    aggregate: Aggregate
    minute_means: tuple[float, ...]

    @classmethod
    def of(cls, rollup: Rollup, metric: Metric) -> Stats:
        """The statistics of `metric` in a rollup."""
        return cls(rollup.metric(metric), tuple(rollup.minute_means.get(metric, ())))

    def to_json(self, metric: Metric, unit: TemperatureUnit, band: Band | None) -> dict[str, Any]:
        """As the API shows it; minutes_below/above are null without that band edge."""
        agg = self.aggregate
        low = _threshold(band.low if band else None, metric, unit)
        high = _threshold(band.high if band else None, metric, unit)
        return {
            "count": agg.count,
            "mean": _out(agg.mean, metric, unit),
            "min": _out(agg.low if agg.count else None, metric, unit),
            "max": _out(agg.high if agg.count else None, metric, unit),
            "stddev": _spread(agg.stddev, metric, unit),
            "minutes_with_data": len(self.minute_means),
            "minutes_below": None if low is None else sum(m < low for m in self.minute_means),
            "minutes_above": None if high is None else sum(m > high for m in self.minute_means),
        }


def _check_period(from_ms: int, to_ms: int) -> None:
    if from_ms >= to_ms:
        raise ValidationError("from: must be before to")
    if to_ms - from_ms > MAX_STATS_DAYS * 24 * HOUR_MS:
        raise ValidationError(f"to: a period covers at most {MAX_STATS_DAYS} days")


# -- use cases ---------------------------------------------------------------------------------


def room_series(
    repo: RollupRepository,
    building: str,
    room: str,
    *,
    metric: Metric,
    from_ms: int,
    to_ms: int,
    interval: Interval,
    unit: TemperatureUnit = TemperatureUnit.C,
) -> dict[str, Any]:
    """Buckets {start, count, average, min, max} of [from, to), empty ones included."""
    starts, edges = series_edges(from_ms, to_ms, INTERVAL_MS[interval])
    buckets = collect(repo, building, room, edges)
    return {
        **_heading(metric, unit, from_ms, to_ms, building=building, room=room),
        "interval": interval.value,
        "buckets": [
            bucket_json(s, b.metric(metric), metric, unit)
            for s, b in zip(starts, buckets, strict=True)
        ],
    }


def _heading(
    metric: Metric, unit: TemperatureUnit, from_ms: int, to_ms: int, **place: str
) -> dict[str, Any]:
    """What every series and statistics answer starts with: the place, metric, unit, period."""
    return {
        **place,
        "metric": metric.value,
        "unit": metric_unit(metric, unit),
        "from": format_ms(from_ms),
        "to": format_ms(to_ms),
    }


def room_stats(
    repo: RollupRepository,
    building: str,
    room: str,
    *,
    metric: Metric,
    from_ms: int,
    to_ms: int,
    band: Band | None = None,
    unit: TemperatureUnit = TemperatureUnit.C,
) -> dict[str, Any]:
    """Count, mean, min, max, stddev and comfort-band minutes of a room over [from, to)."""
    _check_period(from_ms, to_ms)
    (rollup,) = collect(repo, building, room, [from_ms, to_ms])
    return {
        **_heading(metric, unit, from_ms, to_ms, building=building, room=room),
        **Stats.of(rollup, metric).to_json(metric, unit, band),
    }


def combine_rooms(
    per_room: dict[str, Stats], metric: Metric, unit: TemperatureUnit, band: Band | None
) -> dict[str, Any]:
    """Building statistics: every reading weighs the same; also the plain mean of room means."""
    total = Aggregate()
    means: list[float] = []
    for stats in per_room.values():
        total.merge(stats.aggregate)
        if stats.aggregate.mean is not None:
            means.append(stats.aggregate.mean)
    all_minutes = tuple(m for s in per_room.values() for m in s.minute_means)
    body = Stats(total, all_minutes).to_json(metric, unit, band)
    # Over rooms, minutes add up: these are room-minutes.
    body["room_minutes_with_data"] = body.pop("minutes_with_data")
    body["room_minutes_below"] = body.pop("minutes_below")
    body["room_minutes_above"] = body.pop("minutes_above")
    body["mean_of_room_means"] = _out(
        math.fsum(means) / len(means) if means else None, metric, unit
    )
    body["rooms_with_data"] = len(means)
    return body


def building_stats(
    repo: RollupRepository,
    building: str,
    *,
    metric: Metric,
    from_ms: int,
    to_ms: int,
    band: Band | None = None,
    unit: TemperatureUnit = TemperatureUnit.C,
) -> dict[str, Any]:
    """Statistics of every room of the building over [from, to), and of the building."""
    _check_period(from_ms, to_ms)
    per_room = {
        room: Stats.of(collect(repo, building, room, [from_ms, to_ms])[0], metric)
        for room in repo.rooms_of(building)
    }
    return {
        **_heading(metric, unit, from_ms, to_ms, building=building),
        "building_stats": combine_rooms(per_room, metric, unit, band),
        "rooms": [
            {"room": room, **stats.to_json(metric, unit, band)} for room, stats in per_room.items()
        ],
    }


def building_average(
    repo: RollupRepository,
    building: str,
    *,
    metric: Metric,
    minutes: int,
    at_ms: int,
    unit: TemperatureUnit = TemperatureUnit.C,
) -> dict[str, Any]:
    """The building's average over (at - minutes, at]: weighted by readings, and by room."""
    if not 1 <= minutes <= MAX_AVERAGE_MINUTES:
        raise ValidationError(f"minutes: must be an integer from 1 to {MAX_AVERAGE_MINUTES}")
    start_ms = at_ms - minutes * MINUTE_MS
    # (start, at] in whole milliseconds is [start + 1, at + 1).
    edges = [start_ms + 1, at_ms + 1]
    rows = []
    total = Aggregate()
    means: list[float] = []
    for room in repo.rooms_of(building):
        agg = collect(repo, building, room, edges)[0].metric(metric)
        total.merge(agg)
        if agg.mean is not None:
            means.append(agg.mean)
        rows.append(
            {
                "room": room,
                "count": agg.count,
                "average": _out(agg.mean, metric, unit),
                "min": _out(agg.low if agg.count else None, metric, unit),
                "max": _out(agg.high if agg.count else None, metric, unit),
            }
        )
    return {
        "building": building,
        "metric": metric.value,
        "unit": metric_unit(metric, unit),
        "window_start": format_ms(start_ms),
        "window_end": format_ms(at_ms),
        "count": total.count,
        "average_by_readings": _out(total.mean, metric, unit),
        "average_of_rooms": _out(math.fsum(means) / len(means) if means else None, metric, unit),
        "rooms_with_data": len(means),
        "min": _out(total.low if total.count else None, metric, unit),
        "max": _out(total.high if total.count else None, metric, unit),
        "rooms": rows,
    }
