"""Domain models: frozen, in °C, timestamps as UTC epoch milliseconds."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.timeutil import Timestamp


class Metric(StrEnum):
    """What a sensor measures."""

    TEMPERATURE = "temperature"
    HUMIDITY = "humidity"
    CO2 = "co2"


FIXED_METRIC_UNITS = {Metric.HUMIDITY: "%", Metric.CO2: "ppm"}
MAX_PAGE = 1000  # readings per page


@dataclass(frozen=True, slots=True)
class Reading:
    """One stored reading: one sensor, one instant, one or more metrics.

    A frozen dataclass rather than a pydantic model: it is built once per reading on the ingest hot
    path from input that pydantic has already validated (ReadingIn), so it needs no validation.
    A reading belongs to its tenant's room: the same building and room ids of another tenant
    are another room (empty while a request's readings are being placed in their rooms).
    """

    building: str
    room: str
    sensor_id: str
    ts_ms: int
    temperature: float | None = None  # °C
    humidity: float | None = None  # percent
    co2: float | None = None  # ppm
    tenant: str = ""

    def value(self, metric: Metric) -> float | None:
        """This reading's value of `metric`, or None when it did not measure it."""
        if metric is Metric.TEMPERATURE:
            return self.temperature
        if metric is Metric.HUMIDITY:
            return self.humidity
        return self.co2


def earliest_sequence(a: str | None, b: str | None) -> str | None:
    """The earlier of two stream sequence numbers (decimal strings of varying length); None
    stands for none."""
    if a is None or b is None:
        return a if b is None else b
    return min(a, b, key=lambda s: (len(s), s))


@dataclass(frozen=True, slots=True)
class TableChange:
    """One record of the table's stream: its position, when it was written, and the reading it
    stored (None for anything else: rollups, registry items, removals)."""

    sequence: str
    written_ms: int
    reading: Reading | None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write did: readings stored now, and readings that were already stored."""

    accepted: int = 0
    duplicates: int = 0


class Position(BaseModel):
    """A place in a room's time line: after this (timestamp, sensor) the next page starts."""

    model_config = ConfigDict(frozen=True)

    ts_ms: int
    sensor_id: str


class WindowStats(BaseModel):
    """Statistics of one metric of one room over the window (start, end]."""

    model_config = ConfigDict(frozen=True)

    building: str
    room: str
    metric: Metric
    unit: str
    window_start: Timestamp
    window_end: Timestamp
    count: int
    average: float | None
    min: float | None
    max: float | None


class ReadingPage(BaseModel):
    """One page of a room's readings and where the next one starts."""

    model_config = ConfigDict(frozen=True)

    items: tuple[Reading, ...]
    next_after: Position | None
