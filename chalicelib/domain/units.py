"""Temperature units: readings are stored in °C and converted at the edges."""

from __future__ import annotations

from enum import StrEnum

ABSOLUTE_ZERO_C = -273.15


class TemperatureUnit(StrEnum):
    """The units a temperature may be sent or asked for in."""

    C = "C"
    F = "F"
    K = "K"


def to_celsius(value: float, unit: TemperatureUnit) -> float:
    """Convert a temperature in `unit` to °C."""
    if unit is TemperatureUnit.C:
        return value
    if unit is TemperatureUnit.F:
        return (value - 32.0) * 5.0 / 9.0
    return value + ABSOLUTE_ZERO_C


def from_celsius(value: float, unit: TemperatureUnit) -> float:
    """Convert a temperature in °C to `unit`."""
    if unit is TemperatureUnit.C:
        return value
    if unit is TemperatureUnit.F:
        return value * 9.0 / 5.0 + 32.0
    return value - ABSOLUTE_ZERO_C
