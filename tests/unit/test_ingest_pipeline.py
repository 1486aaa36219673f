"""Queue packing: readings messages and SendMessageBatch groups stay inside SQS limits."""

from __future__ import annotations

import json

from chalicelib.aws.sqs import SQS_BATCH_BYTES, message_batches
from chalicelib.domain.inputs import parse_one
from chalicelib.domain.models import Reading
from chalicelib.services import ingest as pipeline

NOW = 1_790_000_000_000


def reading(i: int) -> Reading:
    return Reading(building="b1", room="r1", sensor_id=f"s{i}", ts_ms=NOW - i, temperature=21.5)


def test_readings_messages_hold_at_most_100_readings_each_and_lose_none() -> None:
    bodies = list(pipeline.readings_messages([reading(i) for i in range(250)], "acme"))
    decoded = [json.loads(b) for b in bodies]
    assert [len(d["readings"]) for d in decoded] == [100, 100, 50]
    assert {d["tenant"] for d in decoded} == {"acme"}


def test_a_queued_reading_validates_back_to_the_same_reading() -> None:
    original = Reading(
        building="b1", room="r1", sensor_id="s", ts_ms=NOW, temperature=-3.25, co2=410.0
    )
    body = json.loads(next(pipeline.readings_messages([original], "acme")))
    assert parse_one(body["readings"][0], NOW, 0) == original


def test_message_batches_respect_ten_entries_and_256_kib() -> None:
    small = ["x" * 10] * 25
    assert [len(b) for b in message_batches(small)] == [10, 10, 5]
    big = ["y" * 100_000] * 5
    batches = list(message_batches(big))
    assert [len(b) for b in batches] == [2, 2, 1]
    assert all(sum(len(m) for m in b) <= SQS_BATCH_BYTES for b in batches)
