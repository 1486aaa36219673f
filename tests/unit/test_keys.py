"""Key design: room partitions never collide, sort keys sort by time then sensor."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.aws import keys
from chalicelib.aws.items import item_reading, reading_item
from chalicelib.domain.models import Reading
from chalicelib.domain.timeutil import MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, format_ms
from tests.factories import reading

identifiers = st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True)
timestamps = st.integers(min_value=MIN_TIMESTAMP_MS, max_value=MAX_TIMESTAMP_MS)


places = st.tuples(identifiers, identifiers, identifiers)


@given(places, places)
def test_different_rooms_never_share_a_partition_key(
    first: tuple[str, str, str], second: tuple[str, str, str]
) -> None:
    if first != second:
        assert keys.room_pk(*first) != keys.room_pk(*second)
    assert keys.parse_room_pk(keys.room_pk(*first)) == first


@given(identifiers, identifiers, identifiers, identifiers)
def test_two_tenants_rooms_of_the_same_names_never_share_a_partition_or_registry_item(
    t1: str, t2: str, building: str, room: str
) -> None:
    if t1 != t2:
        assert keys.room_pk(t1, building, room) != keys.room_pk(t2, building, room)
        assert keys.building_key(t1, building) != keys.building_key(t2, building)
        assert keys.room_key(t1, building, room) != keys.room_key(t2, building, room)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("t", "a", "b:c"), ("t", "a:b", "c")),
        (("t", "a.b", "c"), ("t", "a", "b.c")),
        (("t", "a-", "b"), ("t", "a", "-b")),
        (("t:a", "b", "c"), ("t", "a:b", "c")),
    ],
)
def test_lookalike_rooms_get_distinct_partitions(
    first: tuple[str, str, str], second: tuple[str, str, str]
) -> None:
    assert keys.room_pk(*first) != keys.room_pk(*second)


def test_room_partitions_never_start_with_the_prefix_of_other_item_types() -> None:
    # Other item types use pk "@...": an identifier can never start with "@".
    assert not keys.room_pk("t", "a", "b").startswith("@")


@given(st.lists(st.tuples(timestamps, identifiers), min_size=2, max_size=30, unique=True))
def test_sort_key_order_is_time_order_then_sensor(entries: list[tuple[int, str]]) -> None:
    by_key = sorted(entries, key=lambda e: keys.reading_sk(*e))
    assert by_key == sorted(entries)


@given(timestamps, identifiers)
def test_sort_keys_round_trip_and_stay_in_the_readings_range(ts_ms: int, sensor: str) -> None:
    sk = keys.reading_sk(ts_ms, sensor)
    assert keys.parse_reading_sk(sk) == (ts_ms, sensor)
    assert keys.READINGS_LOW <= sk <= keys.READINGS_HIGH
    assert len(format_ms(ts_ms)) == 24


@given(timestamps, identifiers, st.integers(min_value=1, max_value=10**7))
def test_window_bounds_hold_exactly_the_window(ts_ms: int, sensor: str, span: int) -> None:
    # Readings in (after, until] lie inside the BETWEEN bounds; the ones just outside do not.
    until = ts_ms
    after = ts_ms - span
    low, high = keys.window_bounds(after, until)
    assert low <= keys.reading_sk(until, sensor) <= high
    assert low <= keys.reading_sk(after + 1, sensor) <= high
    assert not low <= keys.reading_sk(after, sensor) <= high
    if until < MAX_TIMESTAMP_MS:
        assert not low <= keys.reading_sk(until + 1, sensor) <= high


@given(timestamps, identifiers, st.integers(min_value=1, max_value=10**7))
def test_range_bounds_hold_exactly_the_half_open_range(ts_ms: int, sensor: str, span: int) -> None:
    from_ms, to_ms = ts_ms - span, ts_ms
    low, high = keys.range_bounds(from_ms, to_ms)
    assert low <= keys.reading_sk(from_ms, sensor) <= high
    assert low <= keys.reading_sk(to_ms - 1, sensor) <= high
    assert not low <= keys.reading_sk(to_ms, sensor) <= high
    assert not low <= keys.reading_sk(from_ms - 1, sensor) <= high


@given(
    st.one_of(st.none(), st.floats(min_value=-273.15, max_value=1000)),
    st.one_of(st.none(), st.floats(min_value=0, max_value=100)),
    st.one_of(st.none(), st.floats(min_value=0, max_value=100_000)),
)
def test_items_round_trip_readings(
    temperature: float | None, humidity: float | None, co2: float | None
) -> None:
    original = reading(temperature=temperature, humidity=humidity, co2=co2)
    back = item_reading(reading_item(original))

    def identity(r: Reading) -> tuple[str, str, str, int]:
        return r.building, r.room, r.sensor_id, r.ts_ms

    assert identity(back) == identity(original)
    for name in ("temperature", "humidity", "co2"):
        value = getattr(original, name)
        if value is None:
            assert getattr(back, name) is None
        else:
            assert getattr(back, name) == pytest.approx(value, abs=1e-9)


def test_an_item_carries_its_ttl_only_when_asked() -> None:
    assert "expires_at" not in reading_item(reading())
    assert reading_item(reading(), 123)["expires_at"] == {"N": "123"}
