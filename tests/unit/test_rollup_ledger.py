"""The ledger of minutes a bulk load owes a rollup refresh: runs per room, one run per hour."""

from __future__ import annotations

import itertools
import random

from chalicelib.domain.models import Reading
from chalicelib.domain.rollups import HOUR_MS, MINUTE_MS, RollupLedger, floor_to

T0 = 1_795_600_800_000  # 2026-11-25T10:00:00Z, an hour boundary
MIN = MINUTE_MS


def reading(ts_ms: int, room: str = "r1") -> Reading:
    return Reading(building="b1", room=room, sensor_id="s1", ts_ms=ts_ms, temperature=21.0)


def minutes_of(runs: list[tuple[str, str, int, int]], room: str) -> set[int]:
    return {m for _, r, first, last in runs if r == room for m in range(first, last + 1, MIN)}


def test_a_room_in_time_order_is_one_run_however_long() -> None:
    ledger = RollupLedger()
    ledger.add(reading(T0 + i * 20_000) for i in range(3 * 90))  # 90 minutes, 3 a minute
    assert ledger.minutes == 90
    assert ledger.runs(max_minutes=1440) == [("b1", "r1", T0, T0 + 89 * MIN)]


def test_runs_meeting_in_one_hour_are_joined_and_other_hours_stay_apart() -> None:
    ledger = RollupLedger()
    ledger.add([reading(T0 + 5 * MIN), reading(T0 + 40 * MIN), reading(T0 + 3 * HOUR_MS)])
    ledger.add([reading(T0, room="r2")])
    assert ledger.runs(max_minutes=1440) == [
        ("b1", "r1", T0 + 5 * MIN, T0 + 40 * MIN),
        ("b1", "r1", T0 + 3 * HOUR_MS, T0 + 3 * HOUR_MS),
        ("b1", "r2", T0, T0),
    ]


def test_a_long_run_is_cut_at_hour_boundaries_and_no_hour_is_shared() -> None:
    ledger = RollupLedger()
    start = T0 + 17 * MIN
    ledger.add(reading(start + i * MIN) for i in range(10 * 60))
    runs = ledger.runs(max_minutes=150)
    assert minutes_of(runs, "r1") == {start + i * MIN for i in range(600)}
    assert all(last - first < 150 * MIN for _, _, first, last in runs)
    hours = [floor_to(m, HOUR_MS) for _, _, first, last in runs for m in (first, last)]
    spans = [(hours[i], hours[i + 1]) for i in range(0, len(hours), 2)]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))


def test_out_of_order_and_repeated_minutes_are_each_refreshed_once() -> None:
    rng = random.Random(3)
    instants = [T0 + rng.randrange(6 * 60) * MIN + rng.randrange(MIN) for _ in range(500)]
    ledger = RollupLedger()
    for i in range(0, 500, 50):
        ledger.add(reading(ts) for ts in instants[i : i + 50])
    runs = ledger.runs(max_minutes=1440)
    covered = minutes_of(runs, "r1")
    assert {floor_to(ts, MIN) for ts in instants} <= covered
    assert sum((last - first) // MIN + 1 for *_, first, last in runs) == len(covered)
    ledger.clear()
    assert not ledger and ledger.minutes == 0 and ledger.runs(1440) == []


def test_a_minute_is_fresh_until_one_of_its_readings_turns_out_a_duplicate() -> None:
    ledger = RollupLedger()
    first, second = reading(T0 + 1_000), reading(T0 + 2_000)
    ledger.add([first, second, reading(T0 + MIN)])
    assert ledger.fresh("b1", "r1", T0) == [first, second]
    assert ledger.readings == 3
    ledger.add([], [reading(T0 + 3_000)])
    ledger.add([reading(T0 + 4_000)])
    assert ledger.fresh("b1", "r1", T0) is None and ledger.noted("b1", "r1", T0)
    assert ledger.fresh("b1", "r1", T0 + MIN) is not None
    assert not ledger.noted("b1", "r1", T0 + 2 * MIN)
    assert ledger.readings == 1


def test_readings_past_the_frontier_are_new_unless_this_load_stored_them() -> None:
    ledger = RollupLedger()
    assert ledger.is_new(reading(T0)) is None  # no frontier yet: ask the table
    ledger.set_frontier("b1", "r1", T0 + 90_000)  # latest stored reading at 10:01:30
    assert ledger.is_new(reading(T0 + 90_001)) is None  # same minute as the latest: ask
    assert ledger.is_new(reading(T0 + 2 * MIN)) is True
    ledger.add([reading(T0 + 2 * MIN)])
    assert ledger.is_new(reading(T0 + 2 * MIN)) is False  # this load stored it
    assert ledger.is_new(reading(T0 + 2 * MIN + 5)) is True


def test_a_refresh_moves_the_frontier_past_what_this_load_stored() -> None:
    ledger = RollupLedger()
    ledger.set_frontier("b1", "r1", None)
    ledger.add([reading(T0 + 5 * MIN), reading(T0 + 9 * MIN)])
    ledger.clear()
    assert ledger.is_new(reading(T0 + 9 * MIN + 1)) is None  # refreshed: now in the table
    assert ledger.is_new(reading(T0 + 10 * MIN)) is True


def test_a_contended_room_has_every_reading_checked() -> None:
    ledger = RollupLedger()
    ledger.set_frontier("b1", "r1", T0)
    ledger.contend("b1", "r1")
    ledger.clear()
    assert ledger.is_new(reading(T0 + 1000 * HOUR_MS)) is None
    assert not ledger.beyond("b1", "r1", T0 + 1000 * HOUR_MS)
