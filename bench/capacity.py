"""The capacity model of docs/capacity.md, computed from the figures in bench/results.json.

    python -m bench.capacity        # prints the tables of docs/capacity.md (Markdown)

Inputs: the counted calls and units of bench/stream.py (in results.json), the prod stage's
numbers (infra/operations.py), item sizes computed from the code's own item builders
(aws/items.py, aws/rollups.py), the list prices of bench/stream.PRICES and the ASSUMPTIONS
below. It measures nothing itself, so `make bench` does not run it.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stream import PRICES, WINDOWS

RESULTS = Path(__file__).with_name("results.json")
SENSORS = (10_000, 100_000, 1_000_000)
GATEWAY = 100  # readings (rooms) per gateway request
MONTH_S = 30 * 86_400
ASSUMPTIONS = {
    # Every sensor reports once a minute, one sensor a room: each reading is its room's only
    # reading of its minute.
    "reading_every_s": 60,
    # Added to the in-process time of a Lambda per sequential DynamoDB call (not measured here).
    "dynamodb_round_trip_ms": 5.0,
    # A new on-demand table serves 4,000 writes/s and 12,000 reads/s at once: >= 4 partitions.
    "min_partitions": 4,
    "partition_wcu": 1000,
    "partition_rcu": 3000,
    "partition_gb": 10,
    # DynamoDB's default per-table on-demand throughput quota, and the account quotas.
    "table_quota_wru": 40_000,
    "table_quota_rru": 40_000,
    "api_gateway_account_rps": 10_000,
    "lambda_account_concurrency": 1_000,
    # Storage: $ per GB-month (Standard table class) and the per-item overhead DynamoDB bills.
    "storage_gb_month_usd": 0.25,
    "item_overhead_bytes": 100,
    # The room cache of a warm Lambda keeps a room 300 s, but each instance has its own: with
    # many instances a room's next post rarely meets the one that cached it, so the cold-cache
    # calls (one BatchGetItem of a request's rooms) are the conservative case.
    "rooms_per_building": 1_000,
}
# API Gateway REST request tiers per month (us-east-1): (requests in the tier, $ per million).
API_GATEWAY_TIERS = ((333e6, 3.50), (667e6, 2.80), (19e9, 2.38), (math.inf, 1.51))


def load(path: Path = RESULTS) -> dict[str, float]:
    """The figures of the last `make bench`."""
    figures: dict[str, float] = json.loads(path.read_text())
    return figures


@dataclass(frozen=True)
class ItemSizes:
    """Bytes of a reading (with its write token), a minute rollup and a full hour rollup of the
    simulator's readings (temperature, humidity and CO2), as the code builds them."""

    reading: int
    minute: int
    hour: int

    @classmethod
    def computed(cls) -> ItemSizes:
        from bench.metering import item_size
        from bench.stream import simulated_arrivals
        from chalicelib.aws import keys
        from chalicelib.aws.items import reading_item
        from chalicelib.aws.rollups import seed_items

        readings = [a.reading for a in simulated_arrivals(1, 1, 60)]  # a room's hour
        item = reading_item(readings[0])
        item[keys.WRITE_TOKEN] = {"S": "0" * 12}
        rollups = seed_items(readings, rooms=False)
        hour = next(i for i in rollups if keys.is_hour_sk(i["sk"]["S"]))
        minute = next(i for i in rollups if not keys.is_hour_sk(i["sk"]["S"]))
        hour = {**hour, "asof": {"N": str(readings[0].ts_ms)}}  # the consumer's newest hour
        return cls(item_size(item), item_size(minute), item_size(hour))


def interpolated(figures: dict[str, float], key: str, window_s: float) -> float:
    """`key` of the 60 s-rate curve (rollup_<key>_60s_window_<w>) at `window_s`, linear in
    log(window) between the measured windows; the prod simulation's figure at 300 s and above."""
    if window_s >= 300:
        return figures[f"rollup_{key}_sim_60s"]
    points = [(w, figures[f"rollup_{key}_60s_window_{w:g}"]) for w in WINDOWS]
    if window_s <= points[0][0]:
        return points[0][1]
    for (w0, v0), (w1, v1) in itertools.pairwise(points):
        if w0 <= window_s <= w1:
            share = math.log(window_s / w0) / math.log(w1 / w0)
            return v0 + share * (v1 - v0)
    return points[-1][1]


def api_gateway_usd(requests: float) -> float:
    """A month's REST API requests at the tiered list price."""
    cost, left = 0.0, requests
    for size, price in API_GATEWAY_TIERS:
        used = min(left, size)
        cost += used / 1e6 * price
        left -= used
        if left <= 0:
            break
    return cost


def scenario(
    figures: dict[str, float], sensors: float, way: str, sizes: ItemSizes, *, warm: bool = False
) -> dict[str, Any]:
    """Rates, units, concurrency and the monthly bill of `sensors` posting once a minute; with
    cold room caches (as configured: see ASSUMPTIONS), or `warm` ones."""
    from infra.operations import STAGES

    prod = STAGES["prod"]
    a = ASSUMPTIONS
    trip = a["dynamodb_round_trip_ms"]
    readings_s = sensors / a["reading_every_s"]
    single = way == "single"
    requests_s = readings_s if single else readings_s / GATEWAY
    # Request path (warm and cold room caches): calls, read units and Lambda duration.
    if single:
        warm_calls, cold_calls = (
            figures["single_post_dynamodb_calls"],
            figures["single_post_dynamodb_calls_cold_room"],
        )
        warm_ms = figures["single_post_inprocess_ms"] + trip * warm_calls
        cold_ms = figures["single_post_inprocess_ms_cold_room"] + trip * cold_calls
        cold_rru_per_request = figures["single_post_rru_cold_room"]
    else:
        # A batch's INSERT calls run 4 at a time (write_concurrency); the room checks in turn.
        inserts = figures["batch100_dynamodb_calls"]
        checks = figures["batch100_dynamodb_calls_cold_rooms"] - inserts
        warm_calls, cold_calls = inserts, figures["batch100_dynamodb_calls_cold_rooms"]
        warm_ms = figures["batch100_inprocess_ms"] + trip * math.ceil(inserts / 4)
        cold_ms = figures["batch100_inprocess_ms_cold_rooms"] + trip * (
            math.ceil(inserts / 4) + checks
        )
        cold_rru_per_request = figures["batch100_rru_cold_rooms"]
    request_wru_s = readings_s * figures["wru_per_reading_request_path"]
    request_rru_s = 0.0 if warm else requests_s * cold_rru_per_request
    api_ms = warm_ms if warm else cold_ms
    # The stream: a shard per partition; a batch closes at the window or at the batch size.
    partitions = a["min_partitions"]
    for _ in range(20):  # rollup units depend on the batches, which depend on the partitions
        per_shard_s = readings_s / partitions
        window = min(prod.stream.window_s, prod.stream.batch_size / per_shard_s)
        rollup_wru = interpolated(figures, "wru_per_reading", window)
        rollup_rru = interpolated(figures, "rru_per_reading", window)
        wru_s = request_wru_s + readings_s * rollup_wru
        rru_s = request_rru_s + readings_s * rollup_rru
        needed = max(
            a["min_partitions"],
            math.ceil(wru_s / a["partition_wcu"] + rru_s / a["partition_rcu"]),
        )
        if needed == partitions:
            break
        partitions = needed
    batch_readings = per_shard_s * window
    # Consumer duration: the in-process time per reading, plus its calls' round trips spread
    # over the refresh threads (REFRESH_THREADS = 8).
    per_batch = figures["rollup_readings_per_batch_sim_60s"]
    per_reading_ms = figures["rollup_batch_ms_sim_60s"] / per_batch
    calls_per_reading = figures["rollup_calls_per_reading_sim_60s"]
    consumer_ms = batch_readings * (per_reading_ms + trip * calls_per_reading / 8)
    consumer_invocations_s = partitions / window
    # Hot keys: a room's partition (its readings and rollups); a building's registry partition
    # (room checks on cold caches: the counted consistent read units of a room check).
    room_wcu_s = (1 + rollup_wru) / a["reading_every_s"]
    check_rru = figures["single_post_rru_cold_room"]
    building_rcu_s = a["rooms_per_building"] / a["reading_every_s"] * check_rru
    # Storage added per month: every reading and one minute rollup each (one reading a room a
    # minute), one hour rollup per room and hour; DynamoDB bills 100 bytes more per item.
    overhead = a["item_overhead_bytes"]
    month_bytes = MONTH_S * readings_s * (sizes.reading + sizes.minute + 2 * overhead) + (
        MONTH_S / 3600 * sensors * (sizes.hour + overhead)
    )
    month_gb = month_bytes / 1e9
    month = MONTH_S
    lambda_gb_s = PRICES["lambda_per_gb_second_x86"]

    def lambda_usd(invocations_s: float, ms: float, memory_mb: int) -> float:
        invocations = invocations_s * month
        return invocations * (
            PRICES["lambda_per_million_requests"] / 1e6
            + math.ceil(ms) / 1000 * memory_mb / 1024 * lambda_gb_s
        )

    bill = {
        "API Gateway (REST)": api_gateway_usd(requests_s * month),
        "Lambda: API": lambda_usd(requests_s, api_ms, prod.api.memory_mb),
        "Lambda: stream consumer": lambda_usd(
            consumer_invocations_s, consumer_ms, prod.rollups.memory_mb
        ),
        "DynamoDB: request-path writes": request_wru_s
        * month
        * PRICES["dynamodb_per_million_wru"]
        / 1e6,
        "DynamoDB: room checks (cold caches)": request_rru_s
        * month
        * PRICES["dynamodb_per_million_rru"]
        / 1e6,
        "DynamoDB: rollup writes": readings_s
        * rollup_wru
        * month
        * PRICES["dynamodb_per_million_wru"]
        / 1e6,
        "DynamoDB: consumer reads": readings_s
        * rollup_rru
        * month
        * PRICES["dynamodb_per_million_rru"]
        / 1e6,
        "DynamoDB Streams (read by Lambda)": 0.0,
        "DynamoDB storage, per month of history kept": month_gb * a["storage_gb_month_usd"],
    }
    return {
        "sensors": sensors,
        "way": way,
        "readings_s": readings_s,
        "requests_s": requests_s,
        "calls_per_request": (warm_calls, cold_calls),
        "api_ms": (warm_ms, cold_ms),
        "api_concurrency": (requests_s * warm_ms / 1000, requests_s * cold_ms / 1000),
        "request_wru_s": request_wru_s,
        "request_rru_s": request_rru_s,
        "partitions": partitions,
        "per_shard_s": per_shard_s,
        "window_s": window,
        "batch_readings": batch_readings,
        "rollup_wru_per_reading": rollup_wru,
        "rollup_wru_s": readings_s * rollup_wru,
        "consumer_rru_s": readings_s * rollup_rru,
        "table_wru_s": wru_s,
        "table_rru_s": rru_s,
        "consumer_ms": consumer_ms,
        "consumer_invocations_s": consumer_invocations_s,
        "consumer_concurrency": consumer_invocations_s * consumer_ms / 1000,
        # Share of each shard's time its consumer works (1: it falls behind the stream).
        "consumer_busy": consumer_ms / 1000 / window,
        "room_wcu_s": room_wcu_s,
        "building_rcu_s": building_rcu_s,
        "month_gb": month_gb,
        "bill": bill,
        "total": sum(bill.values()),
    }


# What each limit compares: (label, the scenario's value, the limit).
LIMITS = (
    ("prod stage API throttle (requests/s)", "requests_s", "throttle"),
    ("API Gateway account requests/s", "requests_s", "api_gateway_account_rps"),
    (
        "Lambda account concurrency (API, cold)",
        "api_concurrency_cold",
        "lambda_account_concurrency",
    ),
    ("DynamoDB table write quota (WRU/s)", "table_wru_s", "table_quota_wru"),
    ("DynamoDB table read quota (RRU/s)", "table_rru_s", "table_quota_rru"),
    ("stream consumer busy (share of a shard's time)", "consumer_busy", "one"),
)


def saturation(figures: dict[str, float], way: str, sizes: ItemSizes) -> dict[str, float]:
    """Sensors (once a minute) at which each of LIMITS is reached, found by bisection."""
    from infra.operations import STAGES

    limits = {**ASSUMPTIONS, "throttle": STAGES["prod"].throttle_rate, "one": 1.0}
    found: dict[str, float] = {}
    for label, key, limit in LIMITS:

        def value(sensors: float, key: str = key) -> float:
            run = scenario(figures, sensors, way, sizes)
            return float(run["api_concurrency"][1] if key == "api_concurrency_cold" else run[key])

        low, high = 1e3, 1e9
        if value(high) < limits[limit]:
            found[label] = math.inf
            continue
        for _ in range(60):
            middle = math.sqrt(low * high)
            low, high = (middle, high) if value(middle) < limits[limit] else (low, middle)
        found[label] = high
    return found


def _n(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def tables(figures: dict[str, float]) -> str:
    """The Markdown tables of docs/capacity.md."""
    from infra.operations import STAGES

    stream = STAGES["prod"].stream
    sizes = ItemSizes.computed()
    runs = [scenario(figures, n, way, sizes) for n in SENSORS for way in ("single", "gateway")]
    heads = [f"{r['sensors']:,} {'single' if r['way'] == 'single' else 'gateways'}" for r in runs]
    lines = [
        f"Item sizes (bytes, computed from the code): reading {sizes.reading}, minute rollup "
        f"{sizes.minute}, full hour rollup {sizes.hour}.",
        "",
        "| | " + " | ".join(heads) + " |",
        "| --- |" + " ---: |" * len(runs),
    ]

    def row(label: str, values: list[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(values) + " |")

    row("readings/s", [_n(r["readings_s"]) for r in runs])
    row("requests/s", [_n(r["requests_s"]) for r in runs])
    row(
        "DynamoDB calls per request, warm / cold room cache",
        [f"{r['calls_per_request'][0]:.0f} / {r['calls_per_request'][1]:.0f}" for r in runs],
    )
    row(
        "API Lambda duration ms, warm / cold (in-process + 5 ms a call)",
        [f"{r['api_ms'][0]:.0f} / {r['api_ms'][1]:.0f}" for r in runs],
    )
    row(
        "API Lambda concurrency, warm / cold",
        [f"{_n(r['api_concurrency'][0])} / {_n(r['api_concurrency'][1])}" for r in runs],
    )
    row("request-path WRU/s", [_n(r["request_wru_s"]) for r in runs])
    row("room-check RRU/s (cold caches)", [_n(r["request_rru_s"]) for r in runs])
    row("partitions = stream shards (throughput only)", [str(r["partitions"]) for r in runs])
    row("readings/s per shard", [_n(r["per_shard_s"]) for r in runs])
    row(
        f"effective batching window s ({stream.window_s} s or {stream.batch_size:,} records)",
        [_n(r["window_s"]) for r in runs],
    )
    row("readings per consumer batch", [_n(r["batch_readings"]) for r in runs])
    row("rollup WRU per reading", [f"{r['rollup_wru_per_reading']:.2f}" for r in runs])
    row("rollup WRU/s", [_n(r["rollup_wru_s"]) for r in runs])
    row("consumer RRU/s", [_n(r["consumer_rru_s"]) for r in runs])
    row(
        "table WRU/s / RRU/s (quota 40,000 each)",
        [f"{_n(r['table_wru_s'])} / {_n(r['table_rru_s'])}" for r in runs],
    )
    row(
        "consumer invocations/s; ms each",
        [f"{_n(r['consumer_invocations_s'])}; {_n(r['consumer_ms'])}" for r in runs],
    )
    row(
        "consumer concurrency (average; at most 1 per shard)",
        [_n(r["consumer_concurrency"]) for r in runs],
    )
    row("hottest room partition WCU/s (limit 1,000)", [f"{r['room_wcu_s']:.3f}" for r in runs])
    row(
        "a 1,000-room building's registry partition RCU/s, cold (limit 3,000)",
        [_n(r["building_rcu_s"]) for r in runs],
    )
    row("stored GB added per month", [_n(r["month_gb"]) for r in runs])
    lines += ["", "Monthly bill (USD, 30 days, us-east-1 list prices):", ""]
    lines += ["| service | " + " | ".join(heads) + " |", "| --- |" + " ---: |" * len(runs)]
    for service in runs[0]["bill"]:
        row(service, [f"{r['bill'][service]:,.0f}" for r in runs])
    row("**total**", [f"**{r['total']:,.0f}**" for r in runs])
    warm = [
        scenario(figures, n, way, sizes, warm=True)
        for n in SENSORS
        for way in ("single", "gateway")
    ]
    row("total with warm room caches", [f"{r['total']:,.0f}" for r in warm])
    row(
        "USD per million readings (cold / warm)",
        [
            f"{r['total'] / (r['readings_s'] * MONTH_S / 1e6):.2f} / "
            f"{w['total'] / (w['readings_s'] * MONTH_S / 1e6):.2f}"
            for r, w in zip(runs, warm, strict=True)
        ],
    )
    lines += ["", "Where it saturates (sensors reporting once a minute):", ""]
    lines += ["| limit | single posts | gateways of 100 |", "| --- | ---: | ---: |"]
    single, gateway = saturation(figures, "single", sizes), saturation(figures, "gateway", sizes)
    for label in single:
        lines.append(f"| {label} | {_sensors(single[label])} | {_sensors(gateway[label])} |")
    return "\n".join(lines) + "\n"


def _sensors(value: float) -> str:
    if math.isinf(value):
        return "> 1,000,000,000"
    return f"{value:,.0f}" if value < 10_000 else f"{round(value, -3):,.0f}"


def main() -> None:
    print(tables(load()))


if __name__ == "__main__":
    main()
