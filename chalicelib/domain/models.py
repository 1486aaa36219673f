"""Domain models: frozen, in °C, timestamps as UTC epoch milliseconds."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.timeutil import format_ms
from chalicelib.domain.units import TemperatureUnit, from_celsius


class Metric(StrEnum):
    """What a sensor measures."""

    TEMPERATURE = "temperature"
    HUMIDITY = "humidity"
    CO2 = "co2"


FIXED_METRIC_UNITS = {Metric.HUMIDITY: "%", Metric.CO2: "ppm"}


class Reading(BaseModel):
    """One stored reading: one sensor, one instant, one or more metrics."""

    model_config = ConfigDict(frozen=True)

    building: str
    room: str
    sensor_id: str
    ts_ms: int
    temperature: float | None = None  # °C
    humidity: float | None = None  # percent
    co2: float | None = None  # ppm

    def value(self, metric: Metric) -> float | None:
        """This reading's value of `metric`, or None when it did not measure it."""
        if metric is Metric.TEMPERATURE:
            return self.temperature
        if metric is Metric.HUMIDITY:
            return self.humidity
        return self.co2

    def to_json(self, unit: TemperatureUnit = TemperatureUnit.C) -> dict[str, object]:
        """The reading as the API shows it, temperature in `unit`."""
        temperature = self.temperature
        return {
            "building": self.building,
            "room": self.room,
            "sensor_id": self.sensor_id,
            "timestamp": format_ms(self.ts_ms),
            "temperature": None if temperature is None else from_celsius(temperature, unit),
            "unit": unit.value,
            "humidity": self.humidity,
            "co2": self.co2,
        }


# A plain frozen dataclass: built once per write, where a pydantic model costs ~1 µs more.
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
    start_ms: int
    end_ms: int
    count: int
    average: float | None
    min: float | None
    max: float | None

    def to_json(self) -> dict[str, object]:
        """The statistics as the API shows them."""
        return {
            "building": self.building,
            "room": self.room,
            "metric": self.metric.value,
            "unit": self.unit,
            "window_start": format_ms(self.start_ms),
            "window_end": format_ms(self.end_ms),
            "count": self.count,
            "average": self.average,
            "min": self.min,
            "max": self.max,
        }


class ReadingPage(BaseModel):
    """One page of a room's readings and where the next one starts."""

    model_config = ConfigDict(frozen=True)

    items: tuple[Reading, ...]
    next_after: Position | None
