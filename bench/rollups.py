"""Rollup benchmark: items read per query and write units per reading, in-process moto.

    python -m bench.rollups        (prints the figures as JSON; bench/run.py collects run())

Items read = Query ScannedCount + items returned by GetItem/BatchGetItem, counted by botocore
event hooks on the client. Write units: moto does not meter capacity, so every PutItem and every
BatchWriteItem entry is charged ceil(item size / 1 KB) by DynamoDB's item-size rules (a PutItem
whose condition fails is charged too, as DynamoDB does).
History is seeded directly (raw items + rollups computed once, batch written); the write figures
use the normal put_readings path.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib.aws.dynamo import DynamoTable
from chalicelib.aws.items import reading_item
from chalicelib.aws.readings import DynamoReadingRepository
from chalicelib.aws.rollups import seed_items
from chalicelib.domain.models import Metric, Reading
from chalicelib.domain.reports import ReportSpec
from chalicelib.services.analytics import Interval, room_series, room_stats
from chalicelib.services.reports import build_report

DAY = 86_400_000
START = 1_793_491_200_000  # 2026-11-01T00:00:00Z
# "now" of the queries: not aligned to anything, like a dashboard's
NOW = START + 30 * DAY + 7 * 60_000 + 13_500


def _attr_size(value: dict[str, Any]) -> int:
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = len(v.lstrip("-").replace(".", "").split("e")[0].strip("0")) or 1
        return 1 + math.ceil(digits / 2)
    if kind == "B":
        return len(v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + _attr_size(x) for k, x in v.items())
    if kind == "L":
        return 3 + sum(1 + _attr_size(x) for x in v)
    return 1


def write_units(item: dict[str, Any]) -> int:
    """Write units DynamoDB charges to put `item` (1 per started KB)."""
    size = sum(len(name.encode()) + _attr_size(value) for name, value in item.items())
    return max(1, math.ceil(size / 1024))


class Meter:
    """Counts items read and write units on one client."""

    def __init__(self, client: Any) -> None:
        self.read = 0
        self.wru = 0
        events = client.meta.events
        events.register("after-call.dynamodb.Query", self._query)
        events.register("after-call.dynamodb.GetItem", self._get)
        events.register("after-call.dynamodb.BatchGetItem", self._batch_get)
        events.register("provide-client-params.dynamodb.PutItem", self._put)
        events.register("provide-client-params.dynamodb.BatchWriteItem", self._batch_write)

    def _query(self, parsed: dict[str, Any], **_: Any) -> None:
        self.read += int(parsed.get("ScannedCount", 0))

    def _get(self, parsed: dict[str, Any], **_: Any) -> None:
        self.read += int("Item" in parsed)

    def _batch_get(self, parsed: dict[str, Any], **_: Any) -> None:
        self.read += sum(len(v) for v in parsed.get("Responses", {}).values())

    def _put(self, params: dict[str, Any], **_: Any) -> None:
        self.wru += write_units(params["Item"])

    def _batch_write(self, params: dict[str, Any], **_: Any) -> None:
        for requests in params["RequestItems"].values():
            self.wru += sum(write_units(r["PutRequest"]["Item"]) for r in requests)

    @contextmanager
    def reads(self, into: dict[str, float], key: str) -> Iterator[None]:
        before = self.read
        yield
        into[key] = float(self.read - before)

    def writes(self) -> Callable[[], int]:
        before = self.wru
        return lambda: self.wru - before


def readings(room: str, start: int, end: int, step_ms: int, building: str = "b1") -> list[Reading]:
    """A sensor at a steady rate, temperature wandering through the day."""
    return [
        Reading(
            building=building,
            room=room,
            sensor_id="s1",
            ts_ms=ts,
            temperature=21.0 + 3.0 * math.sin(ts / 3_600_000),
            humidity=None,
            co2=None,
        )
        for ts in range(start, end, step_ms)
    ]


def seed(
    repo: DynamoReadingRepository, history: list[Reading], raw_near: tuple[int, ...] = ()
) -> None:
    """Bulk-load history: raw items plus rollups computed once (not the live write path).

    With `raw_near`, raw items are loaded only within 2 h of those instants (the only raw items a
    measured query can touch: its ragged edges); rollups always cover the whole history. Moto's
    Query time grows with the partition, and this keeps the benchmark to minutes.
    """
    raw = history
    if raw_near:
        raw = [r for r in history if any(abs(r.ts_ms - t) <= 2 * 3_600_000 for t in raw_near)]
    repo.batch_write([reading_item(r) for r in raw] + seed_items(history))
    _log(f"seeded {len(raw)} raw readings of {len(history)}")


def _log(message: str) -> None:
    print(f"[bench.rollups {time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


_T0 = time.monotonic()


@contextmanager
def moto_table() -> Iterator[tuple[Any, str]]:
    """A fresh table in in-process moto."""
    import boto3
    from moto import mock_aws

    from infra.tables import create_table

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "test")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        yield client, create_table(client, f"bench-{uuid.uuid4().hex[:8]}")


def run() -> dict[str, float]:
    """Every figure of the rollups benchmark."""
    out: dict[str, float] = {}
    with moto_table() as (client, table):
        repo = DynamoReadingRepository(DynamoTable(client, table), rollup_threads=1)
        meter = Meter(client)
        edges = (NOW - 30 * DAY, NOW, START, START + 30 * DAY)
        seed(repo, readings("every10s", START - DAY, NOW + DAY, 10_000), raw_near=edges)
        seed(repo, readings("every60s", START - DAY, NOW + DAY, 60_000), raw_near=edges)
        for rate, room in (("10s", "every10s"), ("60s", "every60s")):
            for suffix, (start, end) in {
                "": (NOW - 30 * DAY, NOW),
                "_aligned": (START, START + 30 * DAY),
            }.items():
                with meter.reads(out, f"series_30d_items_read_{rate}{suffix}"):
                    series = room_series(
                        repo,
                        "b1",
                        room,
                        metric=Metric.TEMPERATURE,
                        from_ms=start,
                        to_ms=end,
                        interval=Interval.H1,
                    )
                assert sum(b["count"] for b in series["buckets"]) > 0
        _log("series done")
        with meter.reads(out, "avg15_items_read"):
            room_stats(
                repo,
                "b1",
                "every10s",
                metric=Metric.TEMPERATURE,
                from_ms=NOW - 15 * 60_000 + 1,
                to_ms=NOW + 1,
            )
        with meter.reads(out, "avg15_items_read_raw_window"):
            repo.window("b1", "every10s", NOW - 15 * 60_000, NOW)

    with moto_table() as (client, table):
        repo = DynamoReadingRepository(DynamoTable(client, table), rollup_threads=1)
        meter = Meter(client)
        # Building report: 20 rooms x 7 days (one reading per 5 min per room; the report reads
        # hour rollups only, so the rate does not change its figure).
        week = START + 7 * DAY
        for i in range(20):
            seed(repo, readings(f"room{i:02d}", START, week, 300_000, building="b2"))
        _log("building seeded")
        spec = ReportSpec(building="b2", from_ms=START, to_ms=week)
        with meter.reads(out, "building_report_items_read"):
            result, _ = build_report(repo, spec)
        assert len(result["rooms"]) == 20

        _log("report done")
    # Write units in a small fresh table: they do not depend on its size; moto's speed does.
    with moto_table() as (client, table):
        repo = DynamoReadingRepository(DynamoTable(client, table), rollup_threads=1)
        meter = Meter(client)
        # Write units on the normal path, in steady state (room already indexed by this process).
        repo.put_readings(readings("live", NOW, NOW + 1, 1))
        base = NOW + DAY
        singles = readings("live", base, base + 100 * 10_000, 10_000)
        wru = meter.writes()
        for reading in singles:
            repo.put_readings([reading])
        out["wru_per_reading_single"] = wru() / len(singles)
        base += DAY
        batch = readings("live", base, base + 1000 * 10_000, 10_000)
        wru = meter.writes()
        for i in range(0, len(batch), 100):
            repo.put_readings(batch[i : i + 100])
        out["wru_per_reading_batch100"] = wru() / len(batch)
        # A gateway's batch: 100 rooms, one reading each, same instant (worst case for rollups).
        for i in range(100):
            repo.put_readings(readings(f"gw{i:03d}", base - DAY, base - DAY + 1, 1))
        wru = meter.writes()
        for minute in range(5):
            at = base + DAY + minute * 60_000
            repo.put_readings(
                [r for i in range(100) for r in readings(f"gw{i:03d}", at, at + 1, 1)]
            )
        out["wru_per_reading_batch100_100rooms"] = wru() / 500
        _log("writes done")
    return out


def main() -> None:
    started = time.monotonic()
    figures = run()
    figures["bench_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
