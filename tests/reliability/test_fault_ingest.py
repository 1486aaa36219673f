"""Ingest through HTTP while DynamoDB throttles and fails: nothing lost, nothing counted twice.

ROOMTEMP_FAULT_READINGS (default 3,000; `make faults`: 100,000) readings go out in batches of
1000, a share of them invalid or resent. Every DynamoDB call attempt of the app's client fails with
probability ROOMTEMP_FAULT_RATE (default 0.2), every attempt of a call fails with probability
ROOMTEMP_FAULT_CALL_RATE (0 in make test, 0.02 in make faults), and a share of BatchWriteItem calls
hand half their items back unprocessed. botocore's own retries are off (chalicelib/wiring.py), so
every faulted attempt reaches the app's one retry policy, which retries each call up to
ROOMTEMP_FAULT_MAX_ATTEMPTS times (default 5 here, so that some run out and clients see 503; the
app's own default, 8, almost never runs out). The client resends a request that answered 503
until it is accepted.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.aws.keys import READINGS_HIGH
from tests.streams import drain_table

from .conftest import Api
from .faults import FaultInjector
from .support import Key, assert_rollups_agree, changed_values, close, first_wins, window_mean

BATCH = 1000
TENANT = "rel"  # the tenant of the `api` fixture's keys
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ROOMS = [(f"bldg-{b}", f"room-{r}") for b in range(3) for r in range(4)]
SENSORS = [f"s-{i}" for i in range(8)]


def iso(ts_ms: int) -> str:
    when = EPOCH + timedelta(milliseconds=ts_ms)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


@dataclass
class Workload:
    """What the client sends, and what a correct server must end up storing."""

    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    valid: list[list[Key | None]] = field(default_factory=list)  # per item: its key, or invalid
    values: dict[Key, float] = field(default_factory=dict)  # first value per distinct key


LATE = 0.02  # share of readings that arrive late: from any earlier part of the span


def make_workload(n: int, seed: int, end_ms: int) -> Workload:
    """n readings, ~2% invalid, ~5% resent (same or other batch), ~2% late, over the span the
    rooms' sensors would take at one reading per 10 s (at least 10 minutes) before end_ms.

    Batches arrive as gateways send them: each covers the next slice of the span in random order
    within it, plus late readings from anywhere before. (Every minute a batch touches costs a
    re-read of that minute's readings for its rollup, so batches scattered over the whole span
    would make each batch re-read the table: a test of the emulator's speed, not of faults.)
    """
    rng = random.Random(seed)
    start_ms = end_ms - max(600_000, n * 10_000 // (len(ROOMS) * len(SENSORS)))
    slice_ms = (end_ms - start_ms) / max(1, -(-n // BATCH))
    sent: list[tuple[Key, float]] = []
    first: dict[Key, float] = {}
    workload = Workload()
    items: list[dict[str, Any]] = []
    keys: list[Key | None] = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.02:
            bad = rng.choice(
                [
                    {"building": "bldg-0", "room": "room-0", "temperature": -300.0},
                    {"building": "bad id!", "room": "room-0", "temperature": 20.0},
                    {"building": "bldg-0", "temperature": 20.0},
                    {"building": "bldg-0", "room": "room-0", "timestamp": "yesterday"},
                    # numbers no range check foresaw: overflow, 40 digits, a boolean
                    {"building": "bldg-0", "room": "room-0", "timestamp": 1e308},
                    {"building": "bldg-1", "room": "room-1", "temperature": 10**40},
                    {"building": "bldg-2", "room": "room-2", "temperature": True},
                ]
            )
            items.append(bad)
            keys.append(None)
        elif roll < 0.07 and sent:
            key, value = rng.choice(sent)  # a resend: same key, same value
            items.append(_reading(key, value))
            keys.append(key)
        else:
            low = start_ms + int(i // BATCH * slice_ms)
            high = min(end_ms, start_ms + int((i // BATCH + 1) * slice_ms))
            if roll < 0.07 + LATE and low > start_ms:
                low, high = start_ms, low
            building, room = rng.choice(ROOMS)
            key = (building, room, rng.randrange(low, high), rng.choice(SENSORS))
            value = round(rng.uniform(15.0, 28.0), 3)
            # A key drawn twice is sent again with its first value: one sensor has one value at
            # a moment. (Two values for one key: whichever is stored first stays, and messages
            # and file segments are stored in no fixed order.)
            value = first.setdefault(key, value)
            items.append(_reading(key, value))
            keys.append(key)
            sent.append((key, value))
        if len(items) == BATCH:
            workload.batches.append(items)
            workload.valid.append(keys)
            items, keys = [], []
    if items:
        workload.batches.append(items)
        workload.valid.append(keys)
    workload.values = first_wins(sent)
    return workload


def _reading(key: Key, value: float) -> dict[str, Any]:
    building, room, ts_ms, sensor = key
    return {
        "building": building,
        "room": room,
        "sensor_id": sensor,
        "timestamp": iso(ts_ms),
        "temperature": value,
    }


def stored_readings(client: Any, table: str, tenant: str) -> dict[Key, float]:
    """Every reading in the table, read with paginated Queries (not through the app)."""
    found: dict[Key, float] = {}
    for building, room in ROOMS:
        kwargs: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"{tenant}#{building}#{room}"}},
        }
        while True:
            page = client.query(**kwargs)
            for item in page["Items"]:
                if item["sk"]["S"] > READINGS_HIGH:
                    continue  # a minute or hour rollup of the room, not a reading
                ts, _, sensor = item["sk"]["S"].partition("#")
                when = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
                ts_ms = (when - EPOCH) // timedelta(milliseconds=1)
                found[(building, room, ts_ms, sensor)] = float(item["temperature"]["N"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return found


def test_faulted_ingest_stores_every_valid_reading_once(
    api: Api, table: str, no_backoff: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from chalicelib import wiring

    attempts = os.environ.get("ROOMTEMP_FAULT_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("ROOMTEMP_API_RETRY_ATTEMPTS", attempts)
    wiring.reset()
    # Built now, from this environment: inside a request chalice's test client sets the stage's.
    assert wiring.repositories() and wiring.get_settings().api_retry_attempts == int(attempts)

    # Given: a workload, and faults on every call the app's DynamoDB client makes
    n = int(os.environ.get("ROOMTEMP_FAULT_READINGS", "3000"))
    rate = float(os.environ.get("ROOMTEMP_FAULT_RATE", "0.2"))
    end_ms = int(time.time() * 1000) - 3_600_000
    workload = make_workload(n, seed=8, end_ms=end_ms)
    # make test: 0 (attempt-level faults and unprocessed items only: deterministic under the
    # parallel suite); make faults: 0.005, so whole calls fail and clients see 503s.
    call_rate = float(os.environ.get("ROOMTEMP_FAULT_CALL_RATE", "0"))
    injector = FaultInjector(rate=rate, call_rate=call_rate, unprocessed_rate=rate, seed=8)
    injector.attach(wiring.aws_client("dynamodb"))
    started = time.monotonic()

    # When: each batch is posted, and resent after every 503 until it is accepted
    seen: set[Key] = set()
    statuses: Counter[int] = Counter()
    accepted_total = recovered_total = double_counted = 0
    for items, keys in zip(workload.batches, workload.valid, strict=True):
        for _attempt in range(100):
            status, headers, body = api.request(
                "POST", "/readings", key="ingest", body={"readings": items}
            )
            statuses[status] += 1
            assert status in {201, 207, 503}, (status, body)
            if status != 503:
                break
            assert body["Code"] == "ServiceUnavailable"
            assert int(headers["Retry-After"]) >= 1
        else:
            raise AssertionError("a batch kept answering 503")
        retried = _attempt > 0
        expected_rejected = [i for i, k in enumerate(keys) if k is None]
        assert [r["index"] for r in body["rejected"]] == expected_rejected
        new = {k for k in keys if k is not None and k not in seen}
        expected_duplicates = sum(k is not None for k in keys) - len(new)
        assert body["accepted"] + body["duplicates"] == len(new) + expected_duplicates
        # Readings stored by an attempt that then answered 503 come back as duplicates of the
        # retry; without a retry there can be none.
        recovered = body["duplicates"] - expected_duplicates
        assert recovered >= 0
        assert retried or recovered == 0
        double_counted += max(0, body["accepted"] - len(new))
        accepted_total += body["accepted"]
        recovered_total += recovered
        seen |= new
    # And: the table's stream reaches the consumer under the same faults, plus outages of a few
    # calls (a failed room is delivered again, from its first record)
    injector.call_rate = max(call_rate, 0.05)
    streamed = drain_table(table)
    injector.detach()
    elapsed = time.monotonic() - started

    # Then: the table holds exactly the valid distinct readings, with their first values
    stored = stored_readings(boto3.client("dynamodb", region_name="us-east-1"), table, TENANT)
    lost = len(workload.values.keys() - stored.keys())
    stray = len(stored.keys() - workload.values.keys())
    print(
        "\nfault ingest: "
        + json.dumps(
            {
                "readings_sent": n,
                "valid_distinct": len(workload.values),
                "stored": len(stored),
                "lost": lost,
                "stray": stray,
                "double_counted": double_counted,
                "accepted_in_responses": accepted_total,
                "stored_by_failed_attempts": recovered_total,
                "faults_injected": injector.total,
                "faults_by_kind": dict(injector.injected),
                "http_statuses": {str(k): v for k, v in sorted(statuses.items())},
                "fault_rate_per_attempt": rate,
                "fault_rate_per_call": call_rate,
                "app_attempts_per_call": int(attempts),
                "stream_records": streamed.records,
                "stream_batches_delivered_again": streamed.replays,
                "elapsed_s": round(elapsed, 1),
            }
        )
    )
    assert injector.total > 0, "no fault was injected"
    assert streamed.replays > 0, "the stream consumer never failed: nothing was replayed"
    if call_rate > 0:
        assert statuses[503] > 0, "the faults never reached a client"
    assert (lost, stray, double_counted) == (0, 0, 0)
    assert accepted_total + recovered_total == len(stored)
    assert not changed_values(stored, workload.values)

    # And: the API's averages and pages agree with an independent computation
    at_ms = end_ms
    for building, room in ROOMS:
        status, _, stats = api.request(
            "GET",
            f"/buildings/{building}/rooms/{room}/average?minutes=1440&at={iso(at_ms)}",
            key="read",
        )
        assert status == 200, stats
        count, mean = window_mean(workload.values, building, room, at_ms - 1440 * 60_000, at_ms)
        assert stats["count"] == count
        assert close(stats["average"], mean)
    paged = _page_all(api, ROOMS[0], end_ms)
    assert len(paged) == len(set(paged)) == sum(k[:2] == ROOMS[0] for k in workload.values)
    # And: the rollups behind series and statistics count every stored reading once
    assert_rollups_agree(TENANT, workload.values, ROOMS)


def _page_all(api: Api, place: tuple[str, str], end_ms: int) -> list[tuple[str, str]]:
    building, room = place
    base = (
        f"/buildings/{building}/rooms/{room}/readings"
        f"?limit=1000&from={iso(end_ms - 86_400_000)}&to={iso(end_ms)}"
    )
    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        path = base + (f"&cursor={cursor}" if cursor else "")
        status, _, page = api.request("GET", path, key="read")
        assert status == 200, page
        seen.extend((r["timestamp"], r["sensor_id"]) for r in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
