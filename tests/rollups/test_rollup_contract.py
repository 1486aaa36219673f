"""Contract suite: rollups and the statistics built on them, against both adapters.

Every expectation comes from rollup_reference, which reads nothing but the raw readings.
"""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from typing import Any

import pytest
from rollup_reference import MINUTE, T0, expected, random_readings, stored

from chalicelib.domain.models import Metric, Reading
from chalicelib.domain.rollups import HOUR_MS, Resolution, Rollup
from chalicelib.services import analytics, rollups
from tests.factories import dump
from tests.fakes import InMemoryReadingRepository
from tests.streams import consume

HOUR = HOUR_MS


def write_messily(repo: Any, readings: list[Reading], rng: random.Random) -> list[list[Reading]]:
    """Write in shuffled batches, late and out of order, then retry some batches: as sensors do."""
    shuffled = readings[:]
    rng.shuffle(shuffled)
    batches = [shuffled[i : i + rng.randint(1, 40)] for i in range(0, len(shuffled), 40)]
    retried = rng.sample(batches, k=max(1, len(batches) // 4))
    sent = batches + retried
    for number, batch in enumerate(sent):
        repo.put_readings(batch)
        if number % 3 == 2:
            consume(repo)  # the stream delivers in batches of its own
    consume(repo)
    return sent


def assert_matches(got: dict[str, Any], want: Any) -> None:
    assert got["count"] == want.count
    if want.count == 0:
        assert got["mean"] is None and got["min"] is None and got["stddev"] is None
        return
    assert got["mean"] == pytest.approx(want.mean, rel=1e-9)
    assert got["min"] == pytest.approx(want.low)
    assert got["max"] == pytest.approx(want.high)
    assert got["stddev"] == pytest.approx(want.stddev, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("seed", [1, 2])
def test_stats_over_random_ranges_equal_the_raw_computation(repo: Any, seed: int) -> None:
    # Given readings written late, out of order, in batches, some batches retried
    rng = random.Random(seed)
    readings = random_readings(rng, 300, rooms=("r1", "r2"), span_ms=3 * HOUR)
    sent = write_messily(repo, readings, rng)
    truth = stored(sent)
    for _ in range(12):
        # When statistics are asked over a random range, ragged at the millisecond
        start = T0 + rng.randrange(-HOUR, 3 * HOUR)
        end = start + rng.randrange(1, 4 * HOUR)
        metric = rng.choice(list(Metric))
        got = dump(
            analytics.room_stats(repo, "t", "b1", "r1", metric=metric, from_ms=start, to_ms=end)
        )
        want = expected(truth, "r1", metric, start, end)
        # Then they equal what the raw readings give
        assert_matches(got, want)
        assert got["minutes_with_data"] == len(want.minute_means)


def test_series_buckets_equal_the_raw_computation(repo: Any) -> None:
    rng = random.Random(7)
    readings = random_readings(rng, 250, span_ms=5 * HOUR)
    truth = stored(write_messily(repo, readings, rng))
    for interval in analytics.Interval:
        check_series(repo, truth, interval)


def check_series(repo: Any, truth: list[Reading], interval: analytics.Interval) -> None:
    step = analytics.INTERVAL_MS[interval]
    start = T0 + 12_345
    end = T0 + 5 * HOUR - 4_321
    series = dump(
        analytics.room_series(
            repo,
            "t",
            "b1",
            "r1",
            metric=Metric.TEMPERATURE,
            from_ms=start,
            to_ms=end,
            interval=interval,
        )
    )
    buckets = series["buckets"]
    first = start - start % step
    assert len(buckets) == -(-(end - first) // step)
    for i, bucket in enumerate(buckets):
        lo, hi = max(start, first + i * step), min(end, first + (i + 1) * step)
        want = expected(truth, "r1", Metric.TEMPERATURE, lo, hi)
        assert bucket["count"] == want.count
        if want.count:
            assert bucket["average"] == pytest.approx(want.mean)
            assert (bucket["min"], bucket["max"]) == (want.low, want.high)
        else:
            assert bucket["average"] is None and bucket["min"] is None
    assert (
        sum(b["count"] for b in buckets)
        == expected(truth, "r1", Metric.TEMPERATURE, start, end).count
    )


def test_duplicates_and_retries_never_change_a_rollup(repo: Any) -> None:
    rng = random.Random(3)
    readings = random_readings(rng, 120, span_ms=2 * HOUR)
    repo.put_readings(readings)
    consume(repo)
    before = repo.rollups("t", "b1", "r1", Resolution.HOUR, T0 - HOUR, T0 + 3 * HOUR)
    # When the same readings come again, alone and in other batches, with other values
    altered = [replace(r, temperature=99.0) for r in readings[:50]]
    repo.put_readings(readings[::-1])
    repo.put_readings(altered)
    repo.put_readings(readings[:1])
    assert consume(repo).readings == 0  # nothing new was stored, nothing reaches the rollups
    # Then the hour rollups are the same
    after = repo.rollups("t", "b1", "r1", Resolution.HOUR, T0 - HOUR, T0 + 3 * HOUR)
    assert after == before
    assert sum(r.readings for _, r in after) == len(stored([readings]))


def test_a_reading_hours_late_lands_in_its_own_minute_and_hour(repo: Any) -> None:
    on_time = Reading(
        tenant="t", building="b1", room="r1", sensor_id="s", ts_ms=T0 + 5 * HOUR, temperature=20
    )
    late = Reading(
        tenant="t", building="b1", room="r1", sensor_id="s", ts_ms=T0 + 61_500, temperature=30
    )
    repo.put_readings([on_time])
    consume(repo)
    repo.put_readings([late])
    consume(repo)
    minutes = repo.rollups("t", "b1", "r1", Resolution.MINUTE, T0, T0 + 6 * HOUR)
    assert [start for start, _ in minutes] == [T0 + MINUTE, T0 + 5 * HOUR]
    hours = repo.rollups("t", "b1", "r1", Resolution.HOUR, T0 - HOUR, T0 + 6 * HOUR)
    late_hour = T0 - T0 % HOUR
    assert [(s, r.metric(Metric.TEMPERATURE).total) for s, r in hours] == [
        (late_hour, 30.0),
        (late_hour + 5 * HOUR, 20.0),
    ]


def test_hour_rollup_keeps_each_whole_minute_mean(repo: Any) -> None:
    readings = [
        Reading(
            tenant="t",
            building="b1",
            room="r1",
            sensor_id="s",
            ts_ms=T0 + i * 20_000,
            temperature=t,
        )
        for i, t in enumerate([18.0, 19.0, 20.0, 26.0, 26.0, 26.0])
    ]
    repo.put_readings(readings)
    consume(repo)
    got = dump(
        analytics.room_stats(
            repo,
            "t",
            "b1",
            "r1",
            metric=Metric.TEMPERATURE,
            from_ms=T0 - T0 % HOUR,
            to_ms=T0 - T0 % HOUR + HOUR,
            band=analytics.Band(low=19.5, high=25),
        )
    )
    # minute 1 averages 19.0 (below 19.5), minute 2 averages 26.0 (above 25)
    assert (got["minutes_with_data"], got["minutes_below"], got["minutes_above"]) == (2, 1, 1)


def test_rooms_of_lists_the_rooms_that_have_readings(repo: Any) -> None:
    assert repo.rooms_of("t", "b1") == []
    repo.put_readings(
        [
            Reading(tenant="t", building="b1", room=room, sensor_id="s", ts_ms=T0, temperature=20)
            for room in ("r2", "r1", "r2")
        ]
        + [Reading(tenant="t", building="b2", room="x", sensor_id="s", ts_ms=T0, temperature=20)]
    )
    assert repo.rooms_of("t", "b1") == ["r1", "r2"]


def test_building_average_weighs_readings_and_also_gives_the_mean_of_rooms(repo: Any) -> None:
    def at(room: str, seconds: int, t: float) -> Reading:
        return Reading(
            tenant="t",
            building="b1",
            room=room,
            sensor_id="s",
            ts_ms=T0 + seconds * 1000,
            temperature=t,
        )

    repo.put_readings(
        [at("r1", 10, 20.0), at("r1", 20, 20.0), at("r1", 30, 20.0), at("r2", 40, 24.0)]
    )
    consume(repo)
    got = dump(
        analytics.building_average(
            repo, "t", "b1", metric=Metric.TEMPERATURE, minutes=15, at_ms=T0 + 600_000
        )
    )
    assert got["count"] == 4
    assert got["average_by_readings"] == pytest.approx(21.0)
    assert got["average_of_rooms"] == pytest.approx(22.0)
    assert [(r["room"], r["count"]) for r in got["rooms"]] == [("r1", 3), ("r2", 1)]


def test_rollup_copy_is_independent_of_the_store(repo: Any) -> None:
    repo.put_readings(
        [Reading(tenant="t", building="b1", room="r1", sensor_id="s", ts_ms=T0, temperature=20)]
    )
    consume(repo)
    ((_, first),) = repo.rollups("t", "b1", "r1", Resolution.MINUTE, T0, T0 + MINUTE)
    first.merge(
        Rollup.of_readings(
            [Reading(tenant="t", building="b1", room="r1", sensor_id="t", ts_ms=T0, temperature=5)],
            whole_minute=True,
        )
    )
    ((_, again),) = repo.rollups("t", "b1", "r1", Resolution.MINUTE, T0, T0 + MINUTE)
    assert again.readings == 1


@pytest.mark.parametrize("seed", [4, 5])
def test_stream_batches_replayed_or_split_anywhere_end_with_the_same_rollups(
    repo: Any, seed: int
) -> None:
    # Given readings stored in messy batches, and the stream records they made
    rng = random.Random(seed)
    readings = random_readings(rng, 300, rooms=("r1", "r2"), span_ms=5 * HOUR)
    for i in range(0, len(readings), 37):
        repo.put_readings(readings[i : i + 37])
    changes = repo.take_changes()
    assert len(changes) >= len(stored([readings]))
    # When the consumer folds them split at random points (bisected batches), then a replay
    cut = sorted(rng.sample(range(1, len(changes)), k=4))
    for start, end in zip([0, *cut], [*cut, len(changes)], strict=True):
        rollups.fold(repo, changes[start:end])
    replay = rollups.fold(repo, changes)
    # Then every rollup is what one batch gives, and the replay wrote nothing
    reference = InMemoryReadingRepository()
    reference.put_readings(readings)
    consume(reference)
    assert replay.rollups_written == 0
    for room in ("r1", "r2"):
        for resolution in Resolution:
            window = ("t", "b1", room, resolution, T0 - 2 * HOUR, T0 + 8 * HOUR)
            assert repo.rollups(*window) == reference.rollups(*window)


def test_rollups_say_until_when_they_hold_every_reading(repo: Any) -> None:
    # Given a room whose rollups were never refreshed
    assert repo.freshness("t", "b1", "r1") is None
    # When its readings are folded with the stream batch's newest write time
    repo.put_readings(
        [Reading(tenant="t", building="b1", room="r1", sensor_id="s", ts_ms=T0, temperature=20)]
    )
    changes = repo.take_changes()
    rollups.fold(repo, [replace(c, written_ms=T0 + 5_000) for c in changes])
    # Then the room's rollups say so
    assert repo.freshness("t", "b1", "r1") == T0 + 5_000


def test_one_stream_batch_keeps_two_tenants_rooms_of_the_same_name_apart(repo: Any) -> None:
    # Given one stream batch holding readings of "b1"/"r1" of two tenants
    repo.put_readings(
        [
            Reading(tenant=t, building="b1", room="r1", sensor_id="s", ts_ms=T0 + i, temperature=v)
            for i, (t, v) in enumerate([("t", 20.0), ("u", 90.0), ("t", 22.0)])
        ]
    )
    # When it is folded
    outcome = rollups.fold(repo, repo.take_changes())
    # Then each tenant's room holds its own readings only, and they count as two rooms
    assert outcome.rooms == 2 and outcome.readings == 3
    window = ("b1", "r1", Resolution.MINUTE, T0 - MINUTE, T0 + MINUTE)
    ((_, mine),) = repo.rollups("t", *window)
    ((_, theirs),) = repo.rollups("u", *window)
    assert (mine.readings, theirs.readings) == (2, 1)
    assert mine.metric(Metric.TEMPERATURE).high == 22.0
    assert theirs.metric(Metric.TEMPERATURE).low == 90.0


def test_a_room_that_fails_is_delivered_again_without_failing_its_namesake(repo: Any) -> None:
    # Given a batch with rooms "b1"/"r1" of two tenants, where refreshing tenant u's fails
    repo.put_readings(
        [
            Reading(tenant=t, building="b1", room="r1", sensor_id="s", ts_ms=T0, temperature=20)
            for t in ("t", "u")
        ]
    )
    changes = repo.take_changes()

    class FailingFor:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def refresh(self, readings: Any, *, as_of_ms: int) -> int:
            if readings[0].tenant == "u":
                raise RuntimeError("busy")
            return int(self.inner.refresh(readings, as_of_ms=as_of_ms))

    # When the batch is folded
    outcome = rollups.fold(FailingFor(repo), changes)  # type: ignore[arg-type]
    # Then only tenant u's room is failed, from its own first record
    assert outcome.failed_rooms == [("u", "b1", "r1")]
    assert outcome.failed_from == next(c.sequence for c in changes if c.reading.tenant == "u")
    assert repo.freshness("t", "b1", "r1") is not None


def test_rooms_refreshed_several_at_a_time_fold_as_one_at_a_time() -> None:
    # Given a batch over 12 rooms in the in-memory store, one of whose refreshes fails
    repo = InMemoryReadingRepository()
    repo.put_readings(
        [
            Reading(
                tenant="t", building="b", room=f"r{i}", sensor_id="s", ts_ms=T0 + i, temperature=i
            )
            for i in range(12)
        ]
    )
    changes = repo.take_changes()
    lock = threading.Lock()

    class OneFails:
        def refresh(self, readings: Any, *, as_of_ms: int) -> int:
            if readings[0].room == "r7":
                raise RuntimeError("busy")
            with lock:  # the fake is not meant for threads
                return int(repo.refresh(readings, as_of_ms=as_of_ms))

    # When it is folded one room at a time, and again 4 rooms at a time
    serial = rollups.fold(OneFails(), changes)  # type: ignore[arg-type]
    parallel = rollups.fold(OneFails(), changes, concurrency=4)  # type: ignore[arg-type]

    # Then both outcomes are the same: 11 rooms done, r7 delivered again from its own record
    assert (parallel.rooms, parallel.readings, parallel.failed_rooms) == (
        11,
        11,
        [("t", "b", "r7")],
    )
    assert parallel.failed_from == serial.failed_from
    assert (serial.rooms, serial.readings, serial.failed_rooms) == (11, 11, [("t", "b", "r7")])
