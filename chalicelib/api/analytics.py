"""Series, statistics and building averages: thin views over chalicelib.services.analytics."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint

from chalicelib import wiring
from chalicelib.api.http import parse_query
from chalicelib.api.queries import BuildingAverageQuery, PeriodQuery, SeriesQuery, StatsQuery
from chalicelib.api.routing import route
from chalicelib.api.scope import owner, scoped_building, scoped_room
from chalicelib.domain.access import Principal, Scope
from chalicelib.domain.analytics import BuildingAverage, BuildingStats, RoomStats, Series
from chalicelib.domain.timeutil import now_ms
from chalicelib.services import analytics

analytics_api = Blueprint(__name__)
DAY_MS = 86_400_000
BUILDING = "/buildings/{building}"
ROOM = BUILDING + "/rooms/{room}"


def _period(asked: PeriodQuery) -> dict[str, Any]:
    to_ms = now_ms() if asked.to is None else asked.to
    return {
        "metric": asked.metric,
        "from_ms": to_ms - DAY_MS if asked.from_ is None else asked.from_,
        "to_ms": to_ms,
        "unit": asked.unit,
    }


@route(
    analytics_api, ROOM + "/series", "GET", Scope.READ, query=SeriesQuery, responses={200: Series}
)
def get_series(principal: Principal, building: str, room: str) -> Series:
    """Buckets of one metric of a room over [from, to) (default: the last 24 h, hourly)."""
    building, room = scoped_room(principal, building, room)
    asked = parse_query(SeriesQuery, analytics_api.current_request)
    return analytics.room_series(
        wiring.repositories().rollups,
        owner(principal),
        building,
        room,
        interval=asked.interval,
        **_period(asked),
    )


@route(
    analytics_api, ROOM + "/stats", "GET", Scope.READ, query=StatsQuery, responses={200: RoomStats}
)
def get_room_stats(principal: Principal, building: str, room: str) -> RoomStats:
    """Count, mean, min, max, stddev and comfort-band minutes of a room over [from, to)."""
    building, room = scoped_room(principal, building, room)
    asked = parse_query(StatsQuery, analytics_api.current_request)
    return analytics.room_stats(
        wiring.repositories().rollups,
        owner(principal),
        building,
        room,
        band=asked.band,
        **_period(asked),
    )


@route(
    analytics_api,
    BUILDING + "/stats",
    "GET",
    Scope.READ,
    query=StatsQuery,
    responses={200: BuildingStats},
)
def get_building_stats(principal: Principal, building: str) -> BuildingStats:
    """The same statistics per room and for the whole building."""
    building = scoped_building(principal, building)
    asked = parse_query(StatsQuery, analytics_api.current_request)
    return analytics.building_stats(
        wiring.repositories().rollups, owner(principal), building, band=asked.band, **_period(asked)
    )


@route(
    analytics_api,
    BUILDING + "/average",
    "GET",
    Scope.READ,
    query=BuildingAverageQuery,
    responses={200: BuildingAverage},
)
def get_building_average(principal: Principal, building: str) -> BuildingAverage:
    """The building's average over (at - minutes, at], with one row per room."""
    building = scoped_building(principal, building)
    asked = parse_query(BuildingAverageQuery, analytics_api.current_request)
    return analytics.building_average(
        wiring.repositories().rollups,
        owner(principal),
        building,
        metric=asked.metric,
        minutes=asked.minutes,
        at_ms=now_ms() if asked.at is None else asked.at,
        unit=asked.unit,
    )
