"""Analytics: how a period is cut into rollup-sized pieces, and the answers (series, statistics,
building averages) as the API gives them, in the unit asked for. Pure: no storage here.

Every query splits its period into pieces: whole hours come from hour rollups, whole minutes from
minute rollups, and only the sub-minute ragged edges of the period from raw readings. So the items
read grow with the number of hours (plus <= 2 x 59 minutes and 2 partial minutes), not readings.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import FIXED_METRIC_UNITS, Metric
from chalicelib.domain.rollups import HOUR_MS, MINUTE_MS, Aggregate, ceil_to, floor_to
from chalicelib.domain.timeutil import Timestamp
from chalicelib.domain.units import TemperatureUnit, from_celsius, to_celsius

Bound = Annotated[float, Field(strict=True, allow_inf_nan=False)]

MAX_BUCKETS = 2000
MAX_STATS_DAYS = 366
MAX_WINDOW_MINUTES = 1440  # the longest average window, of a room or a building


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


class Band(BaseModel):
    """A comfort band of one metric: time below `low` and above `high` is reported."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: Bound | None = None
    high: Bound | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError("low must not exceed high")
        return self


# -- cutting a period into pieces ------------------------------------------------------------


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


def check_period(from_ms: int, to_ms: int) -> None:
    """A statistics period: from before to, at most MAX_STATS_DAYS long (422 otherwise)."""
    if from_ms >= to_ms:
        raise ValidationError("from: must be before to")
    if to_ms - from_ms > MAX_STATS_DAYS * 24 * HOUR_MS:
        raise ValidationError(f"to: a period covers at most {MAX_STATS_DAYS} days")


def check_window(minutes: int) -> None:
    """An average window of 1 to MAX_WINDOW_MINUTES minutes (422 otherwise)."""
    if not 1 <= minutes <= MAX_WINDOW_MINUTES:
        raise ValidationError(f"minutes: must be an integer from 1 to {MAX_WINDOW_MINUTES}")


# -- the asked unit ----------------------------------------------------------------------------


class Presentation:
    """How one metric's values are shown: in the asked unit (°C converts; others do not)."""

    def __init__(self, metric: Metric, unit: TemperatureUnit) -> None:
        self.metric = metric
        self.unit = unit
        self.temperature = metric is Metric.TEMPERATURE

    @property
    def unit_name(self) -> str:
        """The unit the metric's values are given in."""
        return self.unit.value if self.temperature else FIXED_METRIC_UNITS[self.metric]

    def value(self, value: float | None) -> float | None:
        """A stored value (°C for temperature) in the asked unit."""
        if value is None or not self.temperature:
            return value
        return from_celsius(value, self.unit)

    def spread(self, value: float | None) -> float | None:
        """A difference (a standard deviation): 1 K = 1 °C = 1.8 °F."""
        if value is None or not self.temperature or self.unit is not TemperatureUnit.F:
            return value
        return value * 9.0 / 5.0

    def threshold(self, value: float | None) -> float | None:
        """A band edge given in the asked unit, as stored (°C for temperature)."""
        if value is None or not self.temperature:
            return value
        return to_celsius(value, self.unit)


# -- the answers -------------------------------------------------------------------------------


class Answer(BaseModel):
    """Base of the analytics answers: what the API returns, field for field."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True
    )


class Bucket(Answer):
    """One bucket of a series: readings counted, their average, min and max."""

    start: Timestamp
    count: int
    average: float | None
    min: float | None
    max: float | None

    @classmethod
    def of(cls, start_ms: int, agg: Aggregate, shown: Presentation) -> Bucket:
        """The bucket starting at `start_ms` holding `agg`."""
        return cls(
            start=start_ms,
            count=agg.count,
            average=shown.value(agg.mean),
            min=shown.value(agg.low if agg.count else None),
            max=shown.value(agg.high if agg.count else None),
        )


class PeriodStats(Answer):
    """Statistics of one metric over a period: exact moments plus comfort-band minutes."""

    count: int
    mean: float | None
    min: float | None
    max: float | None
    stddev: float | None
    minutes_with_data: int = Field(description="whole UTC minutes that hold a reading")
    minutes_below: int | None = Field(
        description="minutes whose mean is below `low` (null: no low)"
    )
    minutes_above: int | None = Field(description="minutes whose mean is above `high`")

    @classmethod
    def of(
        cls, agg: Aggregate, minute_means: Sequence[float], shown: Presentation, band: Band | None
    ) -> PeriodStats:
        """The statistics of `agg` and its minutes' means against `band` (in the asked unit)."""
        low = shown.threshold(band.low if band else None)
        high = shown.threshold(band.high if band else None)
        return cls(
            count=agg.count,
            mean=shown.value(agg.mean),
            min=shown.value(agg.low if agg.count else None),
            max=shown.value(agg.high if agg.count else None),
            stddev=shown.spread(agg.stddev),
            minutes_with_data=len(minute_means),
            minutes_below=None if low is None else sum(m < low for m in minute_means),
            minutes_above=None if high is None else sum(m > high for m in minute_means),
        )


class BuildingSummary(Answer):
    """Statistics over every room: each reading weighs the same; also the mean of room means.
    Minutes add up over rooms: they are room-minutes."""

    count: int
    mean: float | None
    min: float | None
    max: float | None
    stddev: float | None
    room_minutes_with_data: int
    room_minutes_below: int | None
    room_minutes_above: int | None
    mean_of_room_means: float | None
    rooms_with_data: int

    @classmethod
    def of(
        cls,
        per_room: Iterable[tuple[Aggregate, Sequence[float]]],
        shown: Presentation,
        band: Band | None,
    ) -> BuildingSummary:
        """The building's statistics from each room's aggregate and minute means."""
        total = Aggregate()
        means: list[float] = []
        minutes: list[float] = []
        for agg, minute_means in per_room:
            total.merge(agg)
            minutes.extend(minute_means)
            if agg.mean is not None:
                means.append(agg.mean)
        stats = PeriodStats.of(total, minutes, shown, band)
        return cls(
            count=stats.count,
            mean=stats.mean,
            min=stats.min,
            max=stats.max,
            stddev=stats.stddev,
            room_minutes_with_data=stats.minutes_with_data,
            room_minutes_below=stats.minutes_below,
            room_minutes_above=stats.minutes_above,
            mean_of_room_means=shown.value(math.fsum(means) / len(means) if means else None),
            rooms_with_data=len(means),
        )


AS_OF = (
    "the rollups behind this answer hold every reading written until this instant (readings "
    "written later reach them through the table's stream within seconds to minutes); "
    "null: none yet"
)


class Heading(Answer):
    """What every series and statistics answer starts with: the metric, unit and period."""

    metric: Metric
    unit: str
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    as_of: Timestamp | None = Field(description=AS_OF)


class Series(Heading):
    """A room's series: every bucket of [from, to), empty ones included."""

    building: str
    room: str
    interval: Interval
    buckets: list[Bucket]


class RoomStats(Heading, PeriodStats):
    """A room's statistics over [from, to)."""

    building: str
    room: str


class RoomRowStats(PeriodStats):
    """One room's statistics in a building's answer."""

    room: str
    as_of: Timestamp | None = Field(description=AS_OF)


class BuildingStats(Heading):
    """The statistics of every room of a building over [from, to), and of the building."""

    building: str
    building_stats: BuildingSummary
    rooms: list[RoomRowStats]


class RoomWindow(Answer):
    """One room's readings in a building's average window."""

    room: str
    as_of: Timestamp | None = Field(description=AS_OF)
    count: int
    average: float | None
    min: float | None
    max: float | None


class BuildingAverage(Answer):
    """A building's average over (window_start, window_end]: by readings, and by room."""

    building: str
    metric: Metric
    unit: str
    window_start: Timestamp
    window_end: Timestamp
    as_of: Timestamp | None = Field(description=AS_OF + " (the least of its rooms')")
    count: int
    average_by_readings: float | None = Field(description="every reading weighs the same")
    average_of_rooms: float | None = Field(description="the plain mean of the room averages")
    rooms_with_data: int
    min: float | None
    max: float | None
    rooms: list[RoomWindow]


def least_as_of(values: Iterable[int | None]) -> int | None:
    """The as_of of an answer built from several rooms' rollups: the least of theirs (a room
    without rollups yet has none, and makes the answer's none)."""
    found = list(values)
    if not found or any(v is None for v in found):
        return None
    return min(v for v in found if v is not None)
