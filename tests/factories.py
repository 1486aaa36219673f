"""Small builders of domain readings shared by the suites."""

from __future__ import annotations

from chalicelib.domain.models import Reading

# 2026-11-25T10:00:00Z: a fixed instant, so tests never depend on the clock.
T0 = 1_795_600_800_000
MINUTE = 60_000


def reading(
    ts_ms: int = T0,
    *,
    building: str = "hq",
    room: str = "r101",
    sensor_id: str = "s1",
    temperature: float | None = 21.0,
    humidity: float | None = None,
    co2: float | None = None,
) -> Reading:
    """A valid domain reading (temperature in °C)."""
    return Reading(
        building=building,
        room=room,
        sensor_id=sensor_id,
        ts_ms=ts_ms,
        temperature=temperature,
        humidity=humidity,
        co2=co2,
    )
