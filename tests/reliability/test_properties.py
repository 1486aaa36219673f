"""Property tests: for arbitrary readings the answers equal an independent computation.

Bounded in `make test` (support.PROFILE); `make fuzz` runs the same with many more examples.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .support import PROFILE, SLOW_EXAMPLES, Key, celsius, close, first_wins, window_mean

AT_MS = 1_795_600_000_000  # the window's end; every reading lies within 2 hours before it
NOW_MS = AT_MS + 60_000
IDENTIFIER = st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True)
UNITS = st.sampled_from(["C", "F", "K"])
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(ts_ms: int) -> str:
    when = EPOCH + timedelta(milliseconds=ts_ms)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


@st.composite
def reading_sets(draw: st.DrawFn) -> list[tuple[Key, float, str]]:
    """Readings of 1-3 rooms and 1-3 sensors, any unit, with resends, in any order."""
    rooms = draw(st.lists(st.sampled_from(["r1", "r2", "r3"]), min_size=1, max_size=3, unique=True))
    sensors = draw(
        st.lists(st.sampled_from(["s1", "s2", "s3"]), min_size=1, max_size=3, unique=True)
    )
    distinct = draw(
        st.lists(
            st.tuples(
                st.sampled_from(rooms),
                st.sampled_from(sensors),
                st.integers(AT_MS - 2 * 3_600_000, AT_MS),
                st.floats(-50.0, 60.0, allow_nan=False),
                UNITS,
            ),
            min_size=1,
            max_size=40,
            unique_by=lambda t: (t[0], t[1], t[2]),
        )
    )
    readings = []
    for room, sensor, ts, value_c, unit in distinct:
        sent = {"C": value_c, "F": value_c * 1.8 + 32, "K": value_c + 273.15}[unit]
        readings.append((("b", room, ts, sensor), sent, unit))
    resends = draw(st.lists(st.sampled_from(readings), max_size=10))
    return draw(st.permutations(readings + resends))


def post_all(repos: Any, building: str, readings: list[tuple[Key, float, str]]) -> None:
    """Send the readings through the ingest use case in batches of up to 7."""
    from chalicelib.services import readings as services

    for start in range(0, len(readings), 7):
        items = [
            {
                "building": building,
                "room": room,
                "sensor_id": sensor,
                "timestamp": iso(ts),
                "temperature": value,
                "unit": unit,
            }
            for (_, room, ts, sensor), value, unit in readings[start : start + 7]
        ]
        outcome = services.ingest_items(
            repos, items, tenant="t", now_ms=NOW_MS, max_future_ms=300_000
        )
        assert not outcome.rejected


def check_averages(
    repos: Any, building: str, readings: list[tuple[Key, float, str]], minutes: int, unit: str
) -> None:
    from chalicelib.domain.models import Metric
    from chalicelib.domain.units import TemperatureUnit
    from chalicelib.services import readings as services

    expected = first_wins(((building, *k[1:]), celsius(v, u)) for k, v, u in readings)
    for room in ("r1", "r2", "r3"):
        stats = services.window_average(
            repos.readings,
            "t",
            building,
            room,
            metric=Metric.TEMPERATURE,
            minutes=minutes,
            at_ms=AT_MS,
            unit=TemperatureUnit(unit),
        )
        count, mean_c = window_mean(expected, building, room, AT_MS - minutes * 60_000, AT_MS)
        mean = (
            None
            if mean_c is None
            else {"C": mean_c, "F": mean_c * 1.8 + 32, "K": mean_c + 273.15}[unit]
        )
        assert stats.count == count
        assert close(stats.average, mean)


@settings(PROFILE)
@given(readings=reading_sets(), minutes=st.integers(1, 180), unit=UNITS)
def test_window_average_equals_independent_mean_in_memory(
    readings: list[tuple[Key, float, str]], minutes: int, unit: str
) -> None:
    from tests.fakes import in_memory_repositories

    repos = in_memory_repositories()
    post_all(repos, "b", readings)
    check_averages(repos, "b", readings, minutes, unit)


@pytest.fixture
def dynamo_repos(table: str) -> Iterator[Any]:
    from chalicelib import wiring

    yield wiring.repositories()


@settings(
    PROFILE, max_examples=SLOW_EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(readings=reading_sets(), minutes=st.integers(1, 180), unit=UNITS)
def test_window_average_equals_independent_mean_in_dynamodb(
    dynamo_repos: Any, readings: list[tuple[Key, float, str]], minutes: int, unit: str
) -> None:
    building = f"b-{uuid.uuid4().hex[:10]}"  # a fresh building per example
    post_all(dynamo_repos, building, readings)
    check_averages(dynamo_repos, building, readings, minutes, unit)


@settings(PROFILE)
@given(readings=reading_sets(), limit=st.integers(1, 12))
def test_pagination_visits_each_reading_once_in_memory(
    readings: list[tuple[Key, float, str]], limit: int
) -> None:
    from tests.fakes import in_memory_repositories

    repos = in_memory_repositories()
    post_all(repos, "b", readings)
    check_pages(repos, "b", readings, limit)


@settings(
    PROFILE, max_examples=SLOW_EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(readings=reading_sets(), limit=st.integers(1, 12))
def test_pagination_visits_each_reading_once_in_dynamodb(
    dynamo_repos: Any, readings: list[tuple[Key, float, str]], limit: int
) -> None:
    building = f"b-{uuid.uuid4().hex[:10]}"
    post_all(dynamo_repos, building, readings)
    check_pages(dynamo_repos, building, readings, limit)


def check_pages(
    repos: Any, building: str, readings: list[tuple[Key, float, str]], limit: int
) -> None:
    from chalicelib.services import readings as services

    for room in ("r1", "r2", "r3"):
        visited: list[tuple[int, str]] = []
        after = None
        while True:
            page = services.list_readings(
                repos.readings,
                "t",
                building,
                room,
                from_ms=AT_MS - 3 * 3_600_000,
                to_ms=AT_MS + 1,
                limit=limit,
                after=after,
            )
            visited.extend((r.ts_ms, r.sensor_id) for r in page.items)
            after = page.next_after
            if after is None:
                break
        expected = sorted({(k[2], k[3]) for k, _, _ in readings if k[1] == room})
        assert visited == expected  # each once, in time-then-sensor order


@settings(PROFILE)
@given(value=st.floats(-273.15, 1000.0))
def test_unit_conversions_round_trip(value: float) -> None:
    from chalicelib.domain.units import TemperatureUnit, from_celsius, to_celsius

    for unit in (TemperatureUnit.F, TemperatureUnit.K, TemperatureUnit.C):
        assert abs(to_celsius(from_celsius(value, unit), unit) - value) <= 1e-9


@settings(PROFILE)
@given(
    first=st.tuples(IDENTIFIER, IDENTIFIER, IDENTIFIER),
    second=st.tuples(IDENTIFIER, IDENTIFIER, IDENTIFIER),
)
def test_distinct_rooms_never_share_a_partition_key(
    first: tuple[str, str, str], second: tuple[str, str, str]
) -> None:
    from chalicelib.aws import keys
    from chalicelib.domain.inputs import check_identifier

    for identifier in (*first, *second):
        check_identifier(identifier, "id")  # the ids pass validation
    pk_first, pk_second = keys.room_pk(*first), keys.room_pk(*second)
    assert (pk_first == pk_second) == (first == second)
    assert keys.parse_room_pk(pk_first) == first
    assert not pk_first.startswith("@")  # never meets a registry/key partition


@settings(PROFILE)
@given(ts_ms=st.integers(946_684_800_000, 4_102_444_800_000))
def test_epoch_seconds_with_milliseconds_keep_their_millisecond(ts_ms: int) -> None:
    from chalicelib.domain.timeutil import parse_epoch

    assert parse_epoch(ts_ms / 1000, "timestamp") == ts_ms
