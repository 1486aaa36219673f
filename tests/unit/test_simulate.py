"""The simulator: realistic, repeatable readings; faults; a summary that adds up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import wiring
from chalicelib.domain.access import Scope
from chalicelib.domain.inputs import parse_one
from infra.cli.__main__ import build_parser
from infra.cli.keys import bootstrap_key
from infra.cli.simulate import (
    Faults,
    KeyRefusedError,
    Simulator,
    make_rooms,
    occupancy_at,
    run,
)
from tests.fakes import in_memory_repositories

HOUR_MS = 3_600_000
# A Wednesday.
WEDNESDAY = int(datetime(2026, 11, 25, tzinfo=UTC).timestamp() * 1000)


def recording_transport(answer: int = 201) -> tuple[list[list[dict[str, Any]]], Any]:
    calls: list[list[dict[str, Any]]] = []

    def post(chunk: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        calls.append(chunk)
        return answer, {"accepted": len(chunk), "duplicates": 0, "rejected": []}

    return calls, post


def day_of(simulator: Simulator, start_ms: int) -> list[dict[str, Any]]:
    return [r for h in range(24) for r in simulator.readings_at(start_ms + h * HOUR_MS)]


def test_same_seed_same_readings() -> None:
    rooms = make_rooms(2, 2, 1, seed=7)
    first = Simulator(rooms, recording_transport()[1], seed=7)
    second = Simulator(make_rooms(2, 2, 1, seed=7), recording_transport()[1], seed=7)
    assert day_of(first, WEDNESDAY) == day_of(second, WEDNESDAY)
    other = Simulator(make_rooms(2, 2, 1, seed=8), recording_transport()[1], seed=8)
    assert day_of(other, WEDNESDAY) != day_of(first, WEDNESDAY)


def test_every_generated_reading_is_valid_for_the_api() -> None:
    simulator = Simulator(make_rooms(2, 3, 2, seed=1), recording_transport()[1], seed=1)
    readings = day_of(simulator, WEDNESDAY)
    assert len(readings) == 24 * 2 * 3 * 2
    for raw in readings:
        parse_one(raw, now_ms=WEDNESDAY + 2 * 24 * HOUR_MS, max_future_ms=0)


def test_days_are_warmer_in_the_afternoon_and_offices_fill_with_co2() -> None:
    # Given one room with one sensor, When a weekday is simulated hour by hour
    simulator = Simulator(make_rooms(1, 1, 1, seed=3), recording_transport()[1], seed=3)
    by_hour = {h: simulator.readings_at(WEDNESDAY + h * HOUR_MS)[0] for h in range(24)}
    # Then 15:00 is warmer than 03:00 and office hours have more CO2 than the night
    assert by_hour[15]["temperature"] > by_hour[3]["temperature"] + 1.0
    assert by_hour[11]["co2"] > by_hour[3]["co2"] + 100
    assert all(0 <= r["humidity"] <= 100 for r in by_hour.values())


def test_occupancy_is_for_weekday_office_hours() -> None:
    assert occupancy_at(WEDNESDAY + 12 * HOUR_MS) == 1.0
    assert occupancy_at(WEDNESDAY + 3 * HOUR_MS) == 0.0
    assert occupancy_at(WEDNESDAY + (3 * 24 + 12) * HOUR_MS) == 0.0  # Saturday noon


def test_faults_parse_and_refuse_nonsense() -> None:
    assert Faults.parse("drop=0.05,dup=0.1") == Faults(drop=0.05, dup=0.1)
    assert Faults.parse("") == Faults()
    with pytest.raises(ValueError, match="unknown fault"):
        Faults.parse("melt=0.1")
    with pytest.raises(ValueError, match="probability"):
        Faults.parse("drop=2")


def test_faults_change_what_is_sent_and_the_summary_counts_them() -> None:
    calls, transport = recording_transport()
    faults = Faults(drop=0.1, dup=0.1, late=0.1, bad=0.1)
    simulator = Simulator(make_rooms(2, 5, 2, seed=5), transport, seed=5, batch=7, faults=faults)
    for hour in range(10):
        simulator.tick(WEDNESDAY + hour * HOUR_MS)
    simulator.flush()
    summary = simulator.summary
    sent = [r for call in calls for r in call]
    assert summary.generated == 10 * 2 * 5 * 2
    assert min(summary.dropped, summary.duplicated, summary.delayed, summary.corrupted) > 0
    assert summary.sent == len(sent) == (summary.generated - summary.dropped + summary.duplicated)
    assert all(len(call) <= 7 for call in calls)
    # late readings arrive after newer ones of their sensor
    last_seen: dict[str, str] = {}
    out_of_order = 0
    for reading in sent:
        sensor, ts = reading["sensor_id"], str(reading["timestamp"])
        out_of_order += sensor in last_seen and ts < last_seen[sensor]
        last_seen[sensor] = max(ts, last_seen.get(sensor, ts))
    assert out_of_order > 0


def test_retries_a_busy_api_then_counts_the_answer() -> None:
    answers = [(503, {}), (0, {}), (201, {"accepted": 2, "duplicates": 0, "rejected": []})]
    simulator = Simulator(
        make_rooms(1, 2, 1, seed=1), lambda chunk: answers.pop(0), seed=1, sleep=lambda s: None
    )
    simulator.tick(WEDNESDAY)
    summary = simulator.summary
    assert (summary.requests, summary.retries, summary.accepted) == (3, 2, 2)
    assert summary.statuses == {503: 1, 0: 1, 201: 1}


def test_a_refused_key_stops_the_run() -> None:
    simulator = Simulator(make_rooms(1, 1, 1, seed=1), lambda chunk: (401, {}), seed=1)
    with pytest.raises(KeyRefusedError):
        simulator.tick(WEDNESDAY)
    assert simulator.summary.unanswered == 1


@pytest.fixture
def client() -> Iterator[Client]:
    wiring.override(repositories=in_memory_repositories())
    try:
        with Client(app) as test_client:
            yield test_client
    finally:
        wiring.reset()


def test_a_short_run_against_the_api_adds_up(client: Client) -> None:
    # Given an ingest key and a simulator posting through the API (no sleeping: a fake clock)
    key = bootstrap_key("sim", [Scope.INGEST], "test")["key"]

    def transport(chunk: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        answer = client.http.post(
            "/readings",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            body=json.dumps({"readings": chunk}),
        )
        return answer.status_code, json.loads(answer.body)

    faults = Faults(dup=0.2, bad=0.1, late=0.1)
    simulator = Simulator(make_rooms(1, 2, 2, seed=11), transport, seed=11, batch=50, faults=faults)
    clock = iter(range(WEDNESDAY, WEDNESDAY + 10**9, 60_000))
    now = WEDNESDAY + 10 * 60_000
    ticks = iter(range(10))

    # When it backfills 2 h and then runs for 10 ticks
    summary = run(
        simulator,
        rate_s=0,
        duration_s=0,
        backfill_hours=2,
        backfill_step_s=600,
        clock=lambda: min(next(clock), now),
        sleep=lambda s: None,
        should_stop=lambda: next(ticks, None) is None,
    )

    # Then every reading sent got an answer, duplicates were recognised, bad values rejected
    assert summary.accepted + summary.duplicates + summary.rejected == summary.sent
    assert summary.unanswered == 0
    assert summary.duplicated > 0 and summary.corrupted > 0
    assert summary.accepted == summary.generated - summary.dropped - summary.corrupted
    # a repeated valid reading is a duplicate; a repeated bad one is rejected again
    assert summary.duplicates + summary.rejected == summary.duplicated + summary.corrupted
    assert set(summary.statuses) <= {201, 207, 422}
    assert summary.generated == (12 + 10) * 4


def test_the_command_is_registered() -> None:
    args = build_parser().parse_args(
        ["simulate", "--url", "http://x", "--key", "k", "--faults", "drop=0.1", "--backfill", "24"]
    )
    assert args.command == "simulate" and args.backfill == 24.0 and args.rooms == 3
