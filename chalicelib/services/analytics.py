"""Analytics use cases: time series, statistics and building averages from rollups.

The period is cut by domain.analytics.plan: whole hours from hour rollups, whole minutes from
minute rollups, only the sub-minute ragged edges from raw readings (`collect`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

from chalicelib.domain.analytics import (
    INTERVAL_MS,
    Band,
    Bucket,
    BuildingAverage,
    BuildingStats,
    BuildingSummary,
    Interval,
    PeriodStats,
    Presentation,
    RoomRowStats,
    RoomStats,
    RoomWindow,
    Series,
    check_period,
    check_window,
    least_as_of,
    plan,
    series_edges,
)
from chalicelib.domain.models import Metric
from chalicelib.domain.rollups import MINUTE_MS, Aggregate, Resolution, Rollup
from chalicelib.domain.units import TemperatureUnit
from chalicelib.ports import RollupRepository


def collect(
    repo: RollupRepository, tenant: str, building: str, room: str, edges: Sequence[int]
) -> list[Rollup]:
    """One rollup per bucket [edges[i], edges[i+1]), exact, from the fewest items plan() allows."""
    buckets = [Rollup() for _ in edges[1:]]

    def bucket_of(ts_ms: int) -> Rollup:
        return buckets[bisect.bisect_right(edges, ts_ms) - 1]

    hours, minutes, raw = plan(edges)
    for resolution, ranges in ((Resolution.HOUR, hours), (Resolution.MINUTE, minutes)):
        for start, end in ranges:
            for bucket_start, rollup in repo.rollups(
                tenant, building, room, resolution, start, end
            ):
                bucket_of(bucket_start).merge(rollup)
    for start, end in raw:
        readings = repo.window(tenant, building, room, start - 1, end - 1)
        by_bucket: dict[int, list[Any]] = {}
        for reading in readings:
            by_bucket.setdefault(bisect.bisect_right(edges, reading.ts_ms) - 1, []).append(reading)
        for index, group in by_bucket.items():
            buckets[index].merge(Rollup.of_readings(group, whole_minute=False))
    return buckets


def period_stats(
    rollup: Rollup, metric: Metric, shown: Presentation, band: Band | None
) -> PeriodStats:
    """The statistics of `metric` in a rollup."""
    return PeriodStats.of(rollup.metric(metric), rollup.minute_means.get(metric, ()), shown, band)


def room_series(
    repo: RollupRepository,
    tenant: str,
    building: str,
    room: str,
    *,
    metric: Metric,
    from_ms: int,
    to_ms: int,
    interval: Interval,
    unit: TemperatureUnit = TemperatureUnit.C,
) -> Series:
    """Buckets {start, count, average, min, max} of [from, to), empty ones included."""
    starts, edges = series_edges(from_ms, to_ms, INTERVAL_MS[interval])
    shown = Presentation(metric, unit)
    buckets = collect(repo, tenant, building, room, edges)
    return Series(
        building=building,
        room=room,
        metric=metric,
        unit=shown.unit_name,
        from_=from_ms,
        to=to_ms,
        as_of=repo.freshness(tenant, building, room),
        interval=interval,
        buckets=[
            Bucket.of(s, b.metric(metric), shown) for s, b in zip(starts, buckets, strict=True)
        ],
    )


def room_stats(
    repo: RollupRepository,
    tenant: str,
    building: str,
    room: str,
    *,
    metric: Metric,
    from_ms: int,
    to_ms: int,
    band: Band | None = None,
    unit: TemperatureUnit = TemperatureUnit.C,
) -> RoomStats:
    """Count, mean, min, max, stddev and comfort-band minutes of a room over [from, to)."""
    check_period(from_ms, to_ms)
    shown = Presentation(metric, unit)
    (rollup,) = collect(repo, tenant, building, room, [from_ms, to_ms])
    stats = period_stats(rollup, metric, shown, band)
    return RoomStats(
        building=building,
        room=room,
        metric=metric,
        unit=shown.unit_name,
        from_=from_ms,
        to=to_ms,
        as_of=repo.freshness(tenant, building, room),
        **stats.model_dump(),
    )


def building_stats(
    repo: RollupRepository,
    tenant: str,
    building: str,
    *,
    metric: Metric,
    from_ms: int,
    to_ms: int,
    band: Band | None = None,
    unit: TemperatureUnit = TemperatureUnit.C,
) -> BuildingStats:
    """Statistics of every room of the building over [from, to), and of the building."""
    check_period(from_ms, to_ms)
    shown = Presentation(metric, unit)
    per_room = {
        room: collect(repo, tenant, building, room, [from_ms, to_ms])[0]
        for room in repo.rooms_of(tenant, building)
    }
    fresh = {room: repo.freshness(tenant, building, room) for room in per_room}
    return BuildingStats(
        building=building,
        metric=metric,
        unit=shown.unit_name,
        from_=from_ms,
        to=to_ms,
        as_of=least_as_of(fresh.values()),
        building_stats=BuildingSummary.of(
            ((r.metric(metric), r.minute_means.get(metric, ())) for r in per_room.values()),
            shown,
            band,
        ),
        rooms=[
            RoomRowStats(
                room=room,
                as_of=fresh[room],
                **period_stats(rollup, metric, shown, band).model_dump(),
            )
            for room, rollup in per_room.items()
        ],
    )


def building_average(
    repo: RollupRepository,
    tenant: str,
    building: str,
    *,
    metric: Metric,
    minutes: int,
    at_ms: int,
    unit: TemperatureUnit = TemperatureUnit.C,
) -> BuildingAverage:
    """The building's average over (at - minutes, at]: weighted by readings, and by room."""
    check_window(minutes)
    shown = Presentation(metric, unit)
    start_ms = at_ms - minutes * MINUTE_MS
    # (start, at] in whole milliseconds is [start + 1, at + 1).
    edges = [start_ms + 1, at_ms + 1]
    rows = []
    total = Aggregate()
    means: list[float] = []
    fresh: list[int | None] = []
    for room in repo.rooms_of(tenant, building):
        fresh.append(repo.freshness(tenant, building, room))
        agg = collect(repo, tenant, building, room, edges)[0].metric(metric)
        total.merge(agg)
        if agg.mean is not None:
            means.append(agg.mean)
        bucket = Bucket.of(start_ms, agg, shown)
        rows.append(
            RoomWindow(
                room=room,
                as_of=fresh[-1],
                count=agg.count,
                average=bucket.average,
                min=bucket.min,
                max=bucket.max,
            )
        )
    overall = Bucket.of(start_ms, total, shown)
    return BuildingAverage(
        building=building,
        metric=metric,
        unit=shown.unit_name,
        window_start=start_ms,
        window_end=at_ms,
        as_of=least_as_of(fresh),
        count=total.count,
        average_by_readings=overall.average,
        average_of_rooms=shown.value(math.fsum(means) / len(means) if means else None),
        rooms_with_data=len(means),
        min=overall.min,
        max=overall.max,
        rooms=rows,
    )
