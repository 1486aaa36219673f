"""DynamoDB-only rollup behaviour: crash repair, the stale-writer guard, key placement."""

from __future__ import annotations

from typing import Any

from rollup_reference import T0

from chalicelib.aws import keys
from chalicelib.aws.items import reading_item
from chalicelib.aws.rollups import rollup_item
from chalicelib.domain.models import Reading
from chalicelib.domain.rollups import HOUR_MS, Resolution, Rollup, RollupLedger
from tests.factories import dynamo_readings


def make_repo(aws: dict[str, Any]) -> Any:
    return dynamo_readings(aws["dynamodb"], aws["table"])


def readings(n: int) -> list[Reading]:
    return [
        Reading(building="b1", room="r1", sensor_id="s", ts_ms=T0 + i * 10_000, temperature=20 + i)
        for i in range(n)
    ]


def test_a_retry_after_a_crash_between_raw_and_rollup_write_repairs_the_rollup(
    aws: dict[str, Any],
) -> None:
    # Given raw items written, and the process died before any rollup write
    repo = make_repo(aws)
    batch = readings(12)
    repo.batch_write([reading_item(r) for r in batch])
    assert repo.rollups("b1", "r1", Resolution.HOUR, T0 - HOUR_MS, T0 + HOUR_MS) == []
    # When the client retries the batch: every reading is a duplicate
    result = repo.put_readings(batch)
    # Then nothing is counted twice, and the rollups now hold all 12 readings
    assert (result.accepted, result.duplicates) == (0, 12)
    hours = repo.rollups("b1", "r1", Resolution.HOUR, T0 - HOUR_MS, T0 + HOUR_MS)
    assert sum(r.readings for _, r in hours) == 12


def test_a_slower_writer_with_fewer_readings_cannot_overwrite_a_rollup(aws: dict[str, Any]) -> None:
    # Given a minute rollup computed from 6 readings
    repo = make_repo(aws)
    repo.put_readings(readings(6))
    minute = T0 - T0 % 60_000
    # When a writer that saw only the first reading PUTs its (older) recomputation
    stale = Rollup.of_readings(readings(1), whole_minute=True)
    repo._rollups._put(rollup_item("b1", "r1", keys.minute_sk(minute), stale, hour=False))
    # Then the stored rollup still holds the readings of the minute
    (_, kept), *_ = repo.rollups("b1", "r1", Resolution.MINUTE, minute, minute + 60_000)
    assert kept.readings == 6


def test_rollup_keys_sort_after_every_reading_key() -> None:
    latest_reading = keys.reading_sk(253_402_300_799_999, "z" * 64)
    assert keys.READINGS_LOW <= latest_reading <= keys.READINGS_HIGH
    for sk in (keys.minute_sk(946_684_800_000), keys.hour_sk(946_684_800_000)):
        assert sk > keys.READINGS_HIGH
    assert keys.parse_rollup_sk(keys.minute_sk(T0)) == T0
    assert keys.parse_rollup_sk(keys.hour_sk(T0)) == T0 - T0 % HOUR_MS


def test_a_rollup_query_reads_no_reading_items(aws: dict[str, Any]) -> None:
    repo = make_repo(aws)
    repo.put_readings(readings(30))
    scanned: list[int] = []
    aws["dynamodb"].meta.events.register(
        "after-call.dynamodb.Query", lambda parsed, **_: scanned.append(parsed["ScannedCount"])
    )
    minutes = repo.rollups("b1", "r1", Resolution.MINUTE, T0, T0 + HOUR_MS)
    assert len(minutes) == 5
    assert scanned == [5]


def sensor_readings(sensor: str, start: int, n: int, step: int = 20_000) -> list[Reading]:
    return [
        Reading(building="b1", room="r1", sensor_id=sensor, ts_ms=start + i * step, temperature=t)
        for i, t in enumerate(range(n))
    ]


def test_two_loads_of_one_room_at_once_end_with_rollups_of_both(aws: dict[str, Any]) -> None:
    # Given two files of the same room and hours (two gateways), loaded at the same time, each
    # past the room's history as it first looked
    repo = make_repo(aws)
    repo.put_readings(sensor_readings("old", T0 - HOUR_MS, 30))
    one, two = RollupLedger(), RollupLedger()
    gateway_a = sensor_readings("a", T0, 360)  # 2 hours, one every 20 s
    gateway_b = sensor_readings("b", T0 + 30_000, 360)
    # When their chunks and refreshes interleave
    repo.put_readings(gateway_a[:180], deferred=one)
    repo.put_readings(gateway_b[:180], deferred=two)
    repo.refresh_rollups(one)
    repo.put_readings(gateway_a[180:], deferred=one)
    repo.refresh_rollups(two)  # finds the first load's rollups where it wrote
    repo.put_readings(gateway_b[180:], deferred=two)
    repo.refresh_rollups(one)
    repo.refresh_rollups(two)
    # Then every minute and hour holds the readings of both loads and of the history
    window = (T0 - HOUR_MS - T0 % HOUR_MS, T0 + 4 * HOUR_MS)
    hours = repo.rollups("b1", "r1", Resolution.HOUR, *window)
    assert sum(r.readings for _, r in hours) == 750
    minutes = repo.rollups("b1", "r1", Resolution.MINUTE, *window)
    assert sum(r.readings for _, r in minutes) == 750
    for start, rollup in minutes:
        expected = sum(
            start <= r.ts_ms < start + 60_000
            for r in gateway_a + gateway_b + sensor_readings("old", T0 - HOUR_MS, 30)
        )
        assert rollup.readings == expected, start


def test_a_live_reading_in_a_minute_a_load_holds_is_counted_in_its_hour(
    aws: dict[str, Any],
) -> None:
    # Given a load whose first refresh ended half-way through an hour (it holds those minutes)
    repo = make_repo(aws)
    ledger = RollupLedger()
    load = sensor_readings("a", T0, 150)  # 50 minutes, one every 20 s
    repo.put_readings(load[:90], deferred=ledger)
    repo.refresh_rollups(ledger)
    # When a live reading lands in one of the held minutes, and the load then goes on in the hour
    live = sensor_readings("live", T0 + 5 * 60_000 + 7_000, 1)
    repo.put_readings(live)
    repo.put_readings(load[90:], deferred=ledger)
    repo.refresh_rollups(ledger)
    # Then the live reading is in its minute and in the hour the load's refresh rebuilt
    window = (T0 - T0 % HOUR_MS, T0 + 2 * HOUR_MS)
    hours = repo.rollups("b1", "r1", Resolution.HOUR, *window)
    assert sum(r.readings for _, r in hours) == 151
    for start, rollup in repo.rollups("b1", "r1", Resolution.MINUTE, *window):
        assert rollup.readings == sum(start <= r.ts_ms < start + 60_000 for r in load + live)


def test_a_bulk_refresh_never_shrinks_a_rollup_whose_raw_readings_expired(
    aws: dict[str, Any],
) -> None:
    # Given a minute of 6 readings whose raw items then expired (TTL), its rollup kept
    repo = make_repo(aws)
    repo.put_readings(readings(6))
    for r in readings(6)[1:]:
        aws["dynamodb"].delete_item(
            TableName=aws["table"],
            Key={"pk": {"S": keys.room_pk("b1", "r1")}, "sk": {"S": keys.reading_sk(r.ts_ms, "s")}},
        )
    # When a file brings the minute's first reading again (a duplicate: the minute is re-read)
    ledger = RollupLedger()
    assert repo.put_readings(readings(1), deferred=ledger).duplicates == 1
    repo.refresh_rollups(ledger)
    # Then the minute still counts its 6 readings
    minute = T0 - T0 % 60_000
    (_, kept), *_ = repo.rollups("b1", "r1", Resolution.MINUTE, minute, minute + 60_000)
    assert kept.readings == 6
