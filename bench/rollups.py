"""Rollup benchmark: items read per query, in-process moto (bench/inprocess.py).

    python -m bench.rollups        (prints the figures as JSON; bench/run.py collects run())

Items read = Query ScannedCount + items returned by GetItem/BatchGetItem, counted by botocore
event hooks on the client (bench/metering.py). History is seeded directly (raw items + rollups
computed once, batch written). Write units per reading, on the request path and by the stream's
consumer, are bench/stream.py's figures since rollups left the request path (issue 16).
"""

from __future__ import annotations

import json
import math
import sys
import time

from bench.inprocess import moto_table
from bench.metering import Meter
from chalicelib.aws.dynamo import DynamoTable
from chalicelib.aws.items import reading_item
from chalicelib.aws.readings import DynamoReadingRepository
from chalicelib.aws.rollups import seed_items
from chalicelib.domain.analytics import Interval
from chalicelib.domain.models import Metric, Reading
from chalicelib.domain.reports import ReportSpec
from chalicelib.services.analytics import room_series, room_stats
from chalicelib.services.reports import build_report

DAY = 86_400_000
START = 1_793_491_200_000  # 2026-11-01T00:00:00Z
# "now" of the queries: not aligned to anything, like a dashboard's
NOW = START + 30 * DAY + 7 * 60_000 + 13_500
TENANT = "bench"


def readings(room: str, start: int, end: int, step_ms: int, building: str = "b1") -> list[Reading]:
    """A sensor at a steady rate, temperature wandering through the day."""
    return [
        Reading(
            tenant=TENANT,
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
                        TENANT,
                        "b1",
                        room,
                        metric=Metric.TEMPERATURE,
                        from_ms=start,
                        to_ms=end,
                        interval=Interval.H1,
                    )
                assert sum(b.count for b in series.buckets) > 0
        _log("series done")
        with meter.reads(out, "avg15_items_read"):
            room_stats(
                repo,
                TENANT,
                "b1",
                "every10s",
                metric=Metric.TEMPERATURE,
                from_ms=NOW - 15 * 60_000 + 1,
                to_ms=NOW + 1,
            )
        with meter.reads(out, "avg15_items_read_raw_window"):
            repo.window(TENANT, "b1", "every10s", NOW - 15 * 60_000, NOW)

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
            result, _ = build_report(repo, TENANT, spec)
        assert len(result.rooms) == 20

        _log("report done")
    return out


def main() -> None:
    started = time.monotonic()
    figures = run()
    figures["bench_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
