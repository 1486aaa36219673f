"""DynamoDB-only rollup behaviour: crash repair, the stale-writer guard, key placement."""

from __future__ import annotations

from typing import Any

from rollup_reference import T0

from chalicelib.aws import keys
from chalicelib.domain.models import Reading
from chalicelib.domain.rollups import HOUR_MS, Resolution
from tests.factories import dynamo_readings


def make_repo(aws: dict[str, Any]) -> Any:
    return dynamo_readings(aws["dynamodb"], aws["table"])


def readings(n: int) -> list[Reading]:
    return [
        Reading(
            tenant="t",
            building="b1",
            room="r1",
            sensor_id="s",
            ts_ms=T0 + i * 10_000,
            temperature=20 + i,
        )
        for i in range(n)
    ]


def test_a_single_post_writes_the_reading_and_nothing_else(aws: dict[str, Any]) -> None:
    # Given a client that records every call
    calls: list[str] = []
    aws["dynamodb"].meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    # When one reading is stored
    assert make_repo(aws).put_readings(readings(1)).accepted == 1
    # Then it took one conditional PutItem: rollups follow from the stream
    assert calls == ["PutItem"]


def test_a_replayed_stream_batch_finds_nothing_to_write(aws: dict[str, Any]) -> None:
    repo = make_repo(aws)
    batch = readings(12)
    repo.put_readings(batch)
    assert repo.refresh(batch, as_of_ms=T0) > 0
    assert repo.refresh(batch, as_of_ms=T0) == 0  # the same batch again: nothing changed
    hours = repo.rollups("t", "b1", "r1", Resolution.HOUR, T0 - HOUR_MS, T0 + HOUR_MS)
    assert sum(r.readings for _, r in hours) == 12


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
    repo.refresh(readings(30), as_of_ms=T0)
    scanned: list[int] = []
    aws["dynamodb"].meta.events.register(
        "after-call.dynamodb.Query", lambda parsed, **_: scanned.append(parsed["ScannedCount"])
    )
    minutes = repo.rollups("t", "b1", "r1", Resolution.MINUTE, T0, T0 + HOUR_MS)
    assert len(minutes) == 5
    assert scanned == [5]


def test_a_refresh_never_shrinks_a_rollup_whose_raw_readings_expired(
    aws: dict[str, Any],
) -> None:
    # Given a minute of 6 readings whose raw items then expired (TTL), its rollup kept
    repo = make_repo(aws)
    repo.put_readings(readings(6))
    repo.refresh(readings(6), as_of_ms=T0)
    for r in readings(6)[1:]:
        aws["dynamodb"].delete_item(
            TableName=aws["table"],
            Key={
                "pk": {"S": keys.room_pk("t", "b1", "r1")},
                "sk": {"S": keys.reading_sk(r.ts_ms, "s")},
            },
        )
    # When a replayed stream batch brings the minute's first reading again (it is re-read)
    repo.refresh(readings(1), as_of_ms=T0)
    # Then the minute still counts its 6 readings
    minute = T0 - T0 % 60_000
    (_, kept), *_ = repo.rollups("t", "b1", "r1", Resolution.MINUTE, minute, minute + 60_000)
    assert kept.readings == 6


def test_the_headline_average_reads_only_its_window_and_only_its_metric(
    aws: dict[str, Any],
) -> None:
    from chalicelib.domain.models import Metric
    from chalicelib.services import readings as service

    repo = make_repo(aws)
    repo.put_readings(
        [
            Reading(
                tenant="t",
                building="b1",
                room="r1",
                sensor_id="s",
                ts_ms=T0 + i * 10_000,
                temperature=20.0,
                humidity=40.0,
                co2=600.0,
            )
            for i in range(360)  # an hour
        ]
    )
    queries: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    events = aws["dynamodb"].meta.events
    events.register(
        "provide-client-params.dynamodb.Query", lambda params, **_: queries.append(params)
    )
    events.register("after-call.dynamodb.Query", lambda parsed, **_: answers.append(parsed))
    stats = service.window_average(
        repo, "t", "b1", "r1", metric=Metric.TEMPERATURE, minutes=15, at_ms=T0 + 30 * 60_000
    )
    assert stats.count == 90
    (query,) = queries
    assert query["ProjectionExpression"] == "pk, sk, #m"
    assert query["ExpressionAttributeNames"] == {"#m": "temperature"}
    assert answers[0]["ScannedCount"] == 90
    assert all(set(item) == {"pk", "sk", "temperature"} for item in answers[0]["Items"])
