"""Shared pieces of the reliability suite: hypothesis profiles and an independent oracle."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

from hypothesis import settings

# `make test` runs the bounded profile; `make fuzz` sets ROOMTEMP_HYPOTHESIS_PROFILE=fuzz.
settings.register_profile("reliability-bounded", max_examples=60, deadline=None)
settings.register_profile("reliability-fuzz", max_examples=1500, deadline=None)
PROFILE = settings.get_profile(
    "reliability-fuzz"
    if os.environ.get("ROOMTEMP_HYPOTHESIS_PROFILE") == "fuzz"
    else "reliability-bounded"
)
# Examples against moto cost ~100x an in-memory example: a fifth as many.
SLOW_EXAMPLES = max(10, PROFILE.max_examples // 5)

Key = tuple[str, str, int, str]  # building, room, ts_ms, sensor_id


def celsius(value: float, unit: str) -> float:
    """°C of a temperature, written independently of chalicelib.domain.units."""
    if unit == "F":
        return (value - 32) / 1.8
    if unit == "K":
        return value - 273.15
    return value


def changed_values(
    stored: Mapping[Key, float], expected: Mapping[Key, float]
) -> list[tuple[Key, float, float]]:
    """(key, stored, expected) of each expected reading stored with another value."""
    return [(k, stored[k], v) for k, v in expected.items() if not close(stored[k], v, 1e-9)]


def first_wins(readings: Iterable[tuple[Key, float]]) -> dict[Key, float]:
    """Distinct readings by key, the first value sent for a key kept (the API's rule)."""
    stored: dict[Key, float] = {}
    for key, value in readings:
        stored.setdefault(key, value)
    return stored


def window_mean(
    stored: Mapping[Key, float], building: str, room: str, after_ms: int, until_ms: int
) -> tuple[int, float | None]:
    """(count, mean) of a room's stored values with after_ms < ts <= until_ms."""
    values = [
        v
        for (b, r, ts, _), v in stored.items()
        if (b, r) == (building, room) and after_ms < ts <= until_ms
    ]
    return len(values), (math.fsum(values) / len(values) if values else None)


def close(a: float | None, b: float | None, tolerance: float = 1e-6) -> bool:
    """Equal within `tolerance` (values are stored rounded to 1e-9), or both None."""
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)


def reading_json(key: Key, value: float, unit: str = "C") -> dict[str, Any]:
    """A reading as a device posts it (epoch seconds with milliseconds)."""
    building, room, ts_ms, sensor = key
    return {
        "building": building,
        "room": room,
        "sensor_id": sensor,
        "timestamp": ts_ms / 1000,
        "temperature": value,
        "unit": unit,
    }


def assert_rollups_agree(
    tenant: str, stored: Mapping[Key, float], rooms: Iterable[tuple[str, str]]
) -> None:
    """Each room's temperature statistics (built from minute and hour rollups) over everything
    stored equal an independent computation from `stored`: no reading lost or doubled there."""
    from chalicelib import wiring
    from chalicelib.domain.models import Metric
    from chalicelib.services import analytics

    repo = wiring.repositories().rollups
    for building, room in rooms:
        times = [ts for (b, r, ts, _) in stored if (b, r) == (building, room)]
        start, end = min(times) - min(times) % 3_600_000, max(times) + 1
        got = analytics.room_stats(
            repo, tenant, building, room, metric=Metric.TEMPERATURE, from_ms=start, to_ms=end
        )
        count, mean = window_mean(stored, building, room, start - 1, end - 1)
        assert got.count == count, (building, room, got.count, count)
        assert close(got.mean, mean), (building, room, got.mean, mean)
