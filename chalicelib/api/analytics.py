"""Series, statistics and building averages: thin views over chalicelib.services.analytics."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from chalice.app import Blueprint

from chalicelib.api.http import enum_param, identifier, int_param, query, time_param
from chalicelib.api.readings import scoped_room
from chalicelib.api.routedoc import QueryParam, enum_query, time_query
from chalicelib.api.routing import route
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import Metric
from chalicelib.domain.registry import Principal, Scope
from chalicelib.domain.reports import Band
from chalicelib.domain.timeutil import now_ms
from chalicelib.domain.units import TemperatureUnit
from chalicelib.services import access, analytics, registry
from chalicelib.wiring import repositories, rollup_repository

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


def scoped_building(principal: Principal, building: str) -> str:
    """A building of the caller's tenant (404 for anyone else's)."""
    building = identifier(building, "building")
    registry.owned_building(repositories().registry, access.tenant_of(principal), building)
    return building


METRIC = enum_query("metric", [m.value for m in Metric], "temperature", "which metric")
UNIT = enum_query("unit", [u.value for u in TemperatureUnit], "C", "temperature unit")
PERIOD = [
    time_query("from", "start (inclusive); default: 24 h before `to`"),
    time_query("to", "end (exclusive); default: now"),
    METRIC,
    UNIT,
]
BAND = [
    QueryParam("low", {"type": "number"}, "comfort band: minutes below count"),
    QueryParam("high", {"type": "number"}, "comfort band: minutes above count"),
]
INTERVAL = enum_query("interval", [i.value for i in analytics.Interval], "1h", "bucket width")


def _period(params: Mapping[str, str]) -> dict[str, Any]:
    now = now_ms()
    to_ms = time_param(params, "to", now)
    return {
        "metric": enum_param(params, "metric", Metric, Metric.TEMPERATURE),
        "from_ms": time_param(params, "from", to_ms - DAY_MS),
        "to_ms": to_ms,
        "unit": enum_param(params, "unit", TemperatureUnit, TemperatureUnit.C),
    }


@route(stats_routes, ROOM + "/series", "GET", Scope.READ, query=[*PERIOD, INTERVAL])
def get_series(principal: Principal, building: str, room: str) -> dict[str, Any]:
    """Buckets of one metric of a room over [from, to) (default: the last 24 h, hourly)."""
    building, room = scoped_room(principal, building, room)
    params = query(stats_routes.current_request)
    return analytics.room_series(
        rollup_repository(),
        building,
        room,
        interval=enum_param(params, "interval", analytics.Interval, analytics.Interval.H1),
        **_period(params),
    )


@route(stats_routes, ROOM + "/stats", "GET", Scope.READ, query=[*PERIOD, *BAND])
def get_room_stats(principal: Principal, building: str, room: str) -> dict[str, Any]:
    """Count, mean, min, max, stddev and comfort-band minutes of a room over [from, to)."""
    building, room = scoped_room(principal, building, room)
    params = query(stats_routes.current_request)
    return analytics.room_stats(
        rollup_repository(),
        building,
        room,
        band=band_param(params),
        **_period(params),
    )


@route(stats_routes, BUILDING + "/stats", "GET", Scope.READ, query=[*PERIOD, *BAND])
def get_building_stats(principal: Principal, building: str) -> dict[str, Any]:
    """The same statistics per room and for the whole building."""
    building = scoped_building(principal, building)
    params = query(stats_routes.current_request)
    return analytics.building_stats(
        rollup_repository(),
        building,
        band=band_param(params),
        **_period(params),
    )


@route(
    stats_routes,
    BUILDING + "/average",
    "GET",
    Scope.READ,
    query=[
        METRIC,
        QueryParam("minutes", {"type": "integer", "minimum": 1, "default": 15}, "window"),
        time_query("at", "end of the window (inclusive); default: now"),
        UNIT,
    ],
)
def get_building_average(principal: Principal, building: str) -> dict[str, Any]:
    """The building's average over (at - minutes, at], with one row per room."""
    building = scoped_building(principal, building)
    params = query(stats_routes.current_request)
    return analytics.building_average(
        rollup_repository(),
        building,
        metric=enum_param(params, "metric", Metric, Metric.TEMPERATURE),
        minutes=int_param(params, "minutes", 15, 1, analytics.MAX_AVERAGE_MINUTES),
        at_ms=time_param(params, "at", now_ms()),
        unit=enum_param(params, "unit", TemperatureUnit, TemperatureUnit.C),
    )
