"""Series, statistics and building averages: thin views over chalicelib.analytics."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from chalice.app import Blueprint

from chalicelib import analytics
from chalicelib.api.http import (
    enum_param,
    identifier,
    int_param,
    query,
    time_param,
    translate_errors,
)
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import Metric
from chalicelib.domain.reports import Band
from chalicelib.domain.timeutil import now_ms
from chalicelib.domain.units import TemperatureUnit
from chalicelib.wiring import rollup_repository

stats_routes = Blueprint(__name__)
DAY_MS = 86_400_000
BUILDING = "/buildings/{building}"
ROOM = BUILDING + "/rooms/{room}"


def float_param(params: Mapping[str, str], name: str) -> float | None:
    """An optional finite number query parameter (422 otherwise)."""
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(f"{name}: must be a number") from None
    if not math.isfinite(value):
        raise ValidationError(f"{name}: must be a finite number")
    return value


def band_param(params: Mapping[str, str]) -> Band | None:
    """The comfort band from `low` and `high` (either may be absent)."""
    low, high = float_param(params, "low"), float_param(params, "high")
    if low is None and high is None:
        return None
    if low is not None and high is not None and low > high:
        raise ValidationError("low: must not exceed high")
    return Band(low=low, high=high)


def _period(params: Mapping[str, str]) -> dict[str, Any]:
    now = now_ms()
    to_ms = time_param(params, "to", now)
    return {
        "metric": enum_param(params, "metric", Metric, Metric.TEMPERATURE),
        "from_ms": time_param(params, "from", to_ms - DAY_MS),
        "to_ms": to_ms,
        "unit": enum_param(params, "unit", TemperatureUnit, TemperatureUnit.C),
    }


@stats_routes.route(ROOM + "/series", methods=["GET"])
@translate_errors
def get_series(building: str, room: str) -> dict[str, Any]:
    """Buckets of one metric of a room over [from, to) (default: the last 24 h, hourly)."""
    params = query(stats_routes.current_request)
    return analytics.room_series(
        rollup_repository(),
        identifier(building, "building"),
        identifier(room, "room"),
        interval=enum_param(params, "interval", analytics.Interval, analytics.Interval.H1),
        **_period(params),
    )


@stats_routes.route(ROOM + "/stats", methods=["GET"])
@translate_errors
def get_room_stats(building: str, room: str) -> dict[str, Any]:
    """Count, mean, min, max, stddev and comfort-band minutes of a room over [from, to)."""
    params = query(stats_routes.current_request)
    return analytics.room_stats(
        rollup_repository(),
        identifier(building, "building"),
        identifier(room, "room"),
        band=band_param(params),
        **_period(params),
    )


@stats_routes.route(BUILDING + "/stats", methods=["GET"])
@translate_errors
def get_building_stats(building: str) -> dict[str, Any]:
    """The same statistics per room and for the whole building."""
    params = query(stats_routes.current_request)
    return analytics.building_stats(
        rollup_repository(),
        identifier(building, "building"),
        band=band_param(params),
        **_period(params),
    )


@stats_routes.route(BUILDING + "/average", methods=["GET"])
@translate_errors
def get_building_average(building: str) -> dict[str, Any]:
    """The building's average over (at - minutes, at], with one row per room."""
    params = query(stats_routes.current_request)
    return analytics.building_average(
        rollup_repository(),
        identifier(building, "building"),
        metric=enum_param(params, "metric", Metric, Metric.TEMPERATURE),
        minutes=int_param(params, "minutes", 15, 1, analytics.MAX_AVERAGE_MINUTES),
        at_ms=time_param(params, "at", now_ms()),
        unit=enum_param(params, "unit", TemperatureUnit, TemperatureUnit.C),
    )
