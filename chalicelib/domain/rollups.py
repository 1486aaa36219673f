"""Rollups: per-metric count, sum, sum of squares, min and max of a time bucket, and how to merge.

A minute rollup summarizes a room's readings of one UTC minute; an hour rollup merges that hour's
minute rollups and also keeps each minute's mean (so "minutes outside a comfort band" can be
answered for any band from hour items alone). Pure data and arithmetic: no storage here.
"""

from __future__ import annotations

import math
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
