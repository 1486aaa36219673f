"""One contract, every adapter: what the services may rely on from a ReadingRepository."""

from __future__ import annotations

import random

import pytest

from chalicelib.domain.models import Position, Reading, WriteResult
from chalicelib.ports import ReadingRepository
from tests.factories import MINUTE, T0, reading


def key(r: Reading) -> tuple[str, str, str, int]:
    return (r.building, r.room, r.sensor_id, r.ts_ms)


def walk(
    repo: ReadingRepository, limit: int, from_ms: int, to_ms: int, room: str = "r101"
) -> list[Reading]:
    seen: list[Reading] = []
    after: Position | None = None
    while True:
        items, more = repo.page("t1", "hq", room, from_ms, to_ms, limit, after)
        assert len(items) <= limit
        seen.extend(items)
        if not more:
            return seen
        after = Position(ts_ms=items[-1].ts_ms, sensor_id=items[-1].sensor_id)


def test_stored_readings_come_back_in_time_order_with_their_values(
    repo: ReadingRepository,
) -> None:
    stored = [
        reading(T0 + 2, temperature=-12.5, humidity=33.25, co2=None),
        reading(T0 + 1, sensor_id="b.2:x-y_z", temperature=None, humidity=None, co2=415.0),
        reading(T0 + 1, sensor_id="a", temperature=0.1, humidity=0.0, co2=0.0),
    ]
    assert repo.put_readings(stored) == WriteResult(accepted=3, duplicates=0)
    window = repo.window("t1", "hq", "r101", T0, T0 + 2)
    assert window == sorted(stored, key=lambda r: (r.ts_ms, r.sensor_id))


def test_a_single_duplicate_is_counted_and_the_first_value_wins(repo: ReadingRepository) -> None:
    assert repo.put_readings([reading(temperature=20.0)]).accepted == 1
    again = repo.put_readings([reading(temperature=30.0)])
    assert (again.accepted, again.duplicates) == (0, 1)
    assert [r.temperature for r in repo.window("t1", "hq", "r101", T0 - 1, T0)] == [20.0]


def test_a_retried_batch_is_not_stored_twice(repo: ReadingRepository) -> None:
    # Given a batch of 60 (more than two DynamoDB write chunks) stored once
    batch = [reading(T0 + i, temperature=float(i)) for i in range(60)]
    assert repo.put_readings(batch).accepted == 60
    # When the same batch is retried, with other values and 5 new readings
    retry = [reading(T0 + i, temperature=99.0) for i in range(65)]
    result = repo.put_readings(retry)
    # Then only the new readings are stored and the first values stay
    assert (result.accepted, result.duplicates) == (5, 60)
    window = repo.window("t1", "hq", "r101", T0 - 1, T0 + 100)
    assert len(window) == 65
    assert [r.temperature for r in window[:60]] == [float(i) for i in range(60)]


def test_duplicates_inside_one_batch_count_once_and_the_first_wins(
    repo: ReadingRepository,
) -> None:
    result = repo.put_readings(
        [reading(temperature=1.0), reading(sensor_id="s2"), reading(temperature=2.0)]
    )
    assert (result.accepted, result.duplicates) == (2, 1)
    assert [r.temperature for r in repo.window("t1", "hq", "r101", T0 - 1, T0)] == [1.0, 21.0]


def test_the_window_is_open_at_its_start_and_closed_at_its_end(repo: ReadingRepository) -> None:
    after, until = T0, T0 + 15 * MINUTE
    repo.put_readings(
        [reading(after), reading(after + 1), reading(until, sensor_id="z"), reading(until + 1)]
    )
    window = repo.window("t1", "hq", "r101", after, until)
    assert [(r.ts_ms, r.sensor_id) for r in window] == [(after + 1, "s1"), (until, "z")]


def test_tenants_rooms_and_buildings_never_leak_into_each_other(repo: ReadingRepository) -> None:
    rooms = [
        ("t1", "hq", "r101"),
        ("t2", "hq", "r101"),
        ("t1", "hq", "r1"),
        ("t1", "hq", "r1010"),
        ("t1", "h", "q:r101"),
        ("t1", "hq:r101", "x"),
        ("t1:hq", "r101", "x"),
    ]
    repo.put_readings(
        [
            reading(tenant=t, building=b, room=r, temperature=float(i))
            for i, (t, b, r) in enumerate(rooms)
        ]
    )
    for i, (tenant, building, room) in enumerate(rooms):
        window = repo.window(tenant, building, room, T0 - 1, T0)
        assert [(r.building, r.room, r.temperature) for r in window] == [(building, room, i)]
        latest = repo.latest(tenant, building, room)
        assert latest is not None and latest.temperature == i
    assert repo.window("t1", "hq", "none", T0 - 1, T0) == []
    assert repo.window("t3", "hq", "r101", T0 - 1, T0) == []


def test_latest_is_the_newest_reading_of_the_room(repo: ReadingRepository) -> None:
    assert repo.latest("t1", "hq", "r101") is None
    repo.put_readings(
        [
            reading(T0 + 5, sensor_id="a"),
            reading(T0 + 5, sensor_id="b"),
            reading(T0 - 5),
            reading(T0 + 9, room="other"),
        ]
    )
    latest = repo.latest("t1", "hq", "r101")
    assert latest is not None
    assert (latest.ts_ms, latest.sensor_id) == (T0 + 5, "b")


@pytest.mark.parametrize("limit", [1, 3, 10, 1000])
def test_walking_pages_visits_every_reading_exactly_once(
    repo: ReadingRepository, limit: int
) -> None:
    # Given 60 readings in the range, five sensors at each instant, plus readings just outside
    rng = random.Random(7)
    inside = [reading(T0 + (i // 5) * 250, sensor_id=f"s{i % 5}") for i in range(60)]
    outside = [reading(T0 - 1), reading(T0 + 3000), reading(T0 + 100, room="r102")]
    shuffled = inside + outside
    rng.shuffle(shuffled)
    repo.put_readings(shuffled)
    # When every page of [T0, T0 + 3000) is walked
    seen = walk(repo, limit, T0, T0 + 3000)
    # Then each reading comes once, ascending by time then sensor
    assert [key(r) for r in seen] == sorted((key(r) for r in inside), key=lambda k: (k[3], k[2]))


def test_a_page_is_empty_for_an_empty_range(repo: ReadingRepository) -> None:
    repo.put_readings([reading(T0)])
    assert repo.page("t1", "hq", "r101", T0 + 1, T0 + 10, 5, None) == ([], False)
    assert repo.page("t1", "hq", "nobody", T0, T0 + 10, 5, None) == ([], False)


def test_the_store_answers_a_ping(repo: ReadingRepository) -> None:
    repo.ping()
