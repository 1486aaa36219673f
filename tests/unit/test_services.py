"""Use cases against the in-memory repository: averages, windows, duplicates, pages."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import (
    MalformedRequestError,
    NotFoundError,
    StorageUnavailableError,
    ValidationError,
)
from chalicelib.domain.inputs import parse_items
from chalicelib.domain.models import Metric, Position
from chalicelib.domain.units import TemperatureUnit
from chalicelib.services import health
from chalicelib.services import readings as services
from tests.factories import MINUTE, T0, reading
from tests.fakes import InMemoryReadingRepository, in_memory_repositories

AT = T0 + 15 * MINUTE


def average(repo: InMemoryReadingRepository, **kwargs: object) -> services.WindowStats:
    options: dict[str, object] = {"metric": Metric.TEMPERATURE, "minutes": 15, "at_ms": AT}
    options.update(kwargs)
    building = str(options.pop("building", "hq"))
    room = str(options.pop("room", "r101"))
    tenant = str(options.pop("tenant", "t1"))
    return services.window_average(repo, tenant, building, room, **options)  # type: ignore[arg-type]


def exact_mean(values: list[float]) -> float:
    return float(sum(Fraction(v) for v in values) / len(values))


@settings(max_examples=60)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=-5 * MINUTE, max_value=20 * MINUTE),
            st.sampled_from(["s1", "s2", "s3"]),
            st.floats(min_value=-50, max_value=60, allow_nan=False),
        ),
        max_size=60,
        unique_by=lambda e: (e[0], e[1]),
    )
)
def test_average_equals_an_independently_computed_mean(
    entries: list[tuple[int, str, float]],
) -> None:
    # Given readings spread before, inside and after the window (at - 15 min, at]
    repo = InMemoryReadingRepository()
    repo.put_readings([reading(T0 + dt, sensor_id=s, temperature=v) for dt, s, v in entries])
    inside = [v for dt, _, v in entries if 0 < dt <= 15 * MINUTE]
    # When the window average is asked for
    stats = average(repo)
    # Then it matches the mean, min and max computed here from the raw data
    assert stats.count == len(inside)
    if inside:
        assert stats.average == pytest.approx(exact_mean(inside), rel=1e-12, abs=1e-12)
        assert (stats.min, stats.max) == (min(inside), max(inside))
    else:
        assert (stats.average, stats.min, stats.max) == (None, None, None)


def test_average_of_seeded_random_readings_across_rooms_and_metrics() -> None:
    rng = random.Random(20261125)
    repo = InMemoryReadingRepository()
    rooms = [("hq", "r101"), ("hq", "r102"), ("annex", "r101")]
    expected: dict[tuple[str, str, str], list[float]] = {}
    readings = []
    for i in range(3000):
        building, room = rng.choice(rooms)
        dt = rng.randint(-10 * MINUTE, 20 * MINUTE)
        values = {
            "temperature": rng.uniform(15, 30) if rng.random() < 0.8 else None,
            "humidity": rng.uniform(20, 80) if rng.random() < 0.5 else None,
            "co2": rng.uniform(400, 2000) if rng.random() < 0.3 else None,
        }
        if all(v is None for v in values.values()):
            values["co2"] = 500.0
        readings.append(reading(T0 + dt, building=building, room=room, sensor_id=f"s{i}", **values))
        for metric, value in values.items():
            if value is not None and 0 < dt <= 15 * MINUTE:
                expected.setdefault((building, room, metric), []).append(value)
    assert repo.put_readings(readings).accepted == 3000
    for building, room in rooms:
        for metric in Metric:
            stats = average(repo, building=building, room=room, metric=metric)
            values = expected.get((building, room, metric.value), [])
            assert stats.count == len(values) > 0
            assert stats.average == pytest.approx(exact_mean(values), rel=1e-12)


def test_both_window_boundaries() -> None:
    # Given readings exactly at at - 15 min, 1 ms later, exactly at `at`, and 1 ms after `at`
    repo = InMemoryReadingRepository()
    start = AT - 15 * MINUTE
    repo.put_readings(
        [
            reading(start, temperature=100.0),
            reading(start + 1, temperature=20.0),
            reading(AT, temperature=22.0),
            reading(AT + 1, temperature=-100.0),
        ]
    )
    # When the window (at - 15 min, at] is averaged
    stats = average(repo)
    # Then the reading at `at` counts and the one at `at - minutes` does not
    assert (stats.count, stats.average, stats.min, stats.max) == (2, 21.0, 20.0, 22.0)
    assert (stats.window_start, stats.window_end) == (start, AT)


def test_no_leakage_across_tenants_rooms_buildings_or_metrics() -> None:
    repo = InMemoryReadingRepository()
    repo.put_readings(
        [
            reading(AT, temperature=20.0),
            reading(AT, tenant="t2", temperature=60.0),
            reading(AT, room="r102", temperature=90.0),
            reading(AT, building="annex", temperature=80.0),
            reading(AT, building="r101", room="hq", temperature=70.0),
            reading(AT, sensor_id="s2", temperature=None, humidity=45.0),
            reading(AT, sensor_id="s3", temperature=None, co2=900.0),
        ]
    )
    assert (average(repo).count, average(repo).average) == (1, 20.0)
    humidity = average(repo, metric=Metric.HUMIDITY)
    assert (humidity.count, humidity.average, humidity.unit) == (1, 45.0, "%")
    co2 = average(repo, metric=Metric.CO2)
    assert (co2.count, co2.average, co2.unit) == (1, 900.0, "ppm")
    assert (average(repo, tenant="t2").count, average(repo, tenant="t2").average) == (1, 60.0)


def test_an_empty_window_has_count_zero_and_nulls() -> None:
    repo = InMemoryReadingRepository()
    repo.put_readings([reading(AT - 16 * MINUTE), reading(AT + MINUTE)])
    stats = average(repo)
    assert (stats.count, stats.average, stats.min, stats.max) == (0, None, None, None)
    assert stats.model_dump(mode="json")["average"] is None


@pytest.mark.parametrize(
    ("unit", "expected"),
    [(TemperatureUnit.C, 20.0), (TemperatureUnit.F, 68.0), (TemperatureUnit.K, 293.15)],
)
def test_average_is_converted_to_the_asked_unit(unit: TemperatureUnit, expected: float) -> None:
    repo = InMemoryReadingRepository()
    repo.put_readings(
        [reading(AT, temperature=19.0), reading(AT, sensor_id="s2", temperature=21.0)]
    )
    stats = average(repo, unit=unit)
    assert stats.unit == unit.value
    assert stats.average == pytest.approx(expected)


def test_unit_does_not_apply_to_humidity() -> None:
    repo = InMemoryReadingRepository()
    repo.put_readings([reading(AT, humidity=50.0)])
    stats = average(repo, metric=Metric.HUMIDITY, unit=TemperatureUnit.F)
    assert (stats.average, stats.unit) == (50.0, "%")


@pytest.mark.parametrize("minutes", [0, -1, 1441])
def test_window_minutes_out_of_range_are_rejected(minutes: int) -> None:
    with pytest.raises(ValidationError):
        average(InMemoryReadingRepository(), minutes=minutes)


@pytest.mark.parametrize("minutes", [1, 1440])
def test_window_minutes_limits_are_accepted(minutes: int) -> None:
    repo = InMemoryReadingRepository()
    repo.put_readings([reading(AT - minutes * MINUTE + 1)])
    assert average(repo, minutes=minutes).count == 1


def test_a_retried_batch_is_not_counted_twice() -> None:
    # Given a batch stored once
    repo = InMemoryReadingRepository()
    batch = parse_items(
        [
            {
                "building": "hq",
                "room": "r101",
                "sensor_id": f"s{i}",
                "timestamp": AT / 1000,
                "temperature": 20 + i,
            }
            for i in range(5)
        ],
        AT,
        300_000,
    )
    repos = in_memory_repositories(repo)
    first = services.record_readings(repos, "t1", batch, now_ms=AT)
    # When the sensor retries the very same batch
    second = services.record_readings(repos, "t1", batch, now_ms=AT)
    # Then nothing is stored again and the average is unchanged
    assert (first.accepted, first.duplicates) == (5, 0)
    assert (second.accepted, second.duplicates) == (0, 5)
    assert (average(repo).count, average(repo).average) == (5, 22.0)


def test_duplicates_inside_one_batch_count_once_and_the_first_value_wins() -> None:
    repo = InMemoryReadingRepository()
    result = repo.put_readings(
        [reading(AT, temperature=20.0), reading(AT, temperature=99.0), reading(AT, sensor_id="s2")]
    )
    assert (result.accepted, result.duplicates) == (2, 1)
    later = repo.put_readings([reading(AT, temperature=50.0)])
    assert (later.accepted, later.duplicates) == (0, 1)
    stats = average(repo)
    assert (stats.count, stats.min) == (2, 20.0)
    assert services.latest_reading(repo, "t1", "hq", "r101").sensor_id == "s2"


def test_ingest_items_reports_rejections_and_stores_the_rest() -> None:
    repo = InMemoryReadingRepository()
    outcome = services.ingest_items(
        in_memory_repositories(repo),
        [{"building": "hq", "room": "r101", "temperature": 20}, {"building": "hq"}],
        tenant="t1",
        now_ms=AT,
        max_future_ms=300_000,
    )
    assert (outcome.accepted, outcome.duplicates) == (1, 0)
    assert [r.index for r in outcome.rejected] == [1]
    assert outcome.rejected[0].code == "ValidationError"


def test_latest_is_the_newest_reading_or_not_found() -> None:
    repo = InMemoryReadingRepository()
    with pytest.raises(NotFoundError):
        services.latest_reading(repo, "t1", "hq", "r101")
    repo.put_readings([reading(AT), reading(AT - MINUTE, sensor_id="s9"), reading(T0, room="x")])
    assert services.latest_reading(repo, "t1", "hq", "r101").ts_ms == AT


def walk(
    repo: InMemoryReadingRepository, limit: int, from_ms: int, to_ms: int
) -> list[tuple[int, str]]:
    seen: list[tuple[int, str]] = []
    after: Position | None = None
    while True:
        page = services.list_readings(
            repo, "t1", "hq", "r101", from_ms=from_ms, to_ms=to_ms, limit=limit, after=after
        )
        assert len(page.items) <= limit
        seen.extend((r.ts_ms, r.sensor_id) for r in page.items)
        if page.next_after is None:
            return seen
        after = page.next_after


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 1000])
def test_walking_pages_visits_every_reading_once_in_order(limit: int) -> None:
    repo = InMemoryReadingRepository()
    stored = [(T0 + (i // 4) * 1000, f"s{i % 4}") for i in range(40)]  # 4 sensors per instant
    repo.put_readings([reading(ts, sensor_id=s) for ts, s in stored])
    repo.put_readings([reading(T0 - 1), reading(T0 + 10_000)])  # just outside [from, to)
    assert walk(repo, limit, T0, T0 + 10_000) == sorted(stored)


@pytest.mark.parametrize(
    ("limit", "from_ms", "to_ms"), [(0, T0, T0 + 1), (1001, T0, T0 + 1), (10, T0, T0)]
)
def test_bad_page_requests_are_rejected(limit: int, from_ms: int, to_ms: int) -> None:
    with pytest.raises(ValidationError):
        services.list_readings(
            InMemoryReadingRepository(),
            "t1",
            "hq",
            "r101",
            from_ms=from_ms,
            to_ms=to_ms,
            limit=limit,
            after=None,
        )


def test_a_position_outside_the_range_is_malformed() -> None:
    with pytest.raises(MalformedRequestError):
        services.list_readings(
            InMemoryReadingRepository(),
            "t1",
            "hq",
            "r101",
            from_ms=T0,
            to_ms=T0 + 10,
            limit=5,
            after=Position(ts_ms=T0 + 10, sensor_id="s1"),
        )


def test_health_names_every_resource_that_does_not_answer() -> None:
    def missing() -> None:
        raise StorageUnavailableError("NoSuchBucket")

    def fine() -> None:
        return None

    assert health.check({"table": fine, "bucket": fine}) == {"table": "ok", "bucket": "ok"}
    with pytest.raises(StorageUnavailableError) as raised:
        health.check({"table": fine, "bucket": missing, "ingest_queue": missing})
    assert raised.value.message == "bucket: NoSuchBucket; ingest_queue: NoSuchBucket"


def test_health_answers_unavailable_for_an_error_no_adapter_translated() -> None:
    def denied() -> None:
        raise PermissionError("AccessDenied")

    with pytest.raises(StorageUnavailableError) as raised:
        health.check({"table": denied})
    assert raised.value.message == "table: unavailable (PermissionError)"
