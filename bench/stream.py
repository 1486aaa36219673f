"""Issue 16: readings only on the request path, rollups from the table's stream — what it costs.

    python -m bench.stream          (prints the figures as JSON; bench/run.py collects run())

1. Request path, in-process (the app under chalice.test.Client on moto, botocore event hooks on
   `wiring.aws_client("dynamodb")`, bench/metering.py): DynamoDB calls of one single-reading
   POST with warm caches (and with a cold room cache), write units per reading (single posts;
   batches of 100 readings over 100 rooms), and the handler's in-process time per request.
2. The stream consumer, simulated (`rollup_wru_per_reading_*`): the simulator's rooms and
   climate (infra/cli/simulate.py), one sensor a room reporting every 10 s (and every 60 s:
   the `_60s` keys; each room at its own phase), written in arrival order into a moto table;
   the table's stream records are cut into batches as the event source mapping does (a batch
   opens at its first record and closes `window_s` later or at `batch_size` records) and each
   batch is handed to the app's own "rollups" handler before any later reading is written.
   Rollup write units are counted from the consumer's BatchWriteItem puts, by size. The lag of
   a reading: from its arrival to its batch's close, plus the batch's measured processing time.
3. HTTP against the real local stack (bench/stack.py): single-reading throughput, 1,000-reading
   batches vs raw BatchWriteItem, the 15-minute average vs a bare Query, rollup lag.
4. Cost per million readings from the counted calls and units (`cost_*`; prices in PRICES).

Sizes: ROOMTEMP_BENCH_STREAM_POSTS (200 single posts counted; batches: a twentieth),
ROOMTEMP_BENCH_STREAM_ROOMS / _HOURS (50 / 2: the prod-batching simulation),
ROOMTEMP_BENCH_STREAM_CURVE_ROOMS / _CURVE_HOURS (10 / 1: the window curve),
ROOMTEMP_BENCH_STREAM_WINDOWS (1,5,10,30,60,120,300), ROOMTEMP_BENCH_STREAM_HTTP (1; 0 skips the
HTTP figures) and those of bench/stack.py. Defaults take ~9 minutes on 2 cores.
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.inprocess import moto_app
from bench.metering import Meter

ROOT = Path(__file__).resolve().parent.parent
START_MS = 1_796_083_200_000  # 2026-12-01T00:00:00Z: simulated readings start here
WINDOWS = (1, 5, 10, 30, 60, 120, 300)
# AWS us-east-1 list prices (USD) as of 2026-11-30, as issue 16 states them (DynamoDB: on-demand
# since the November 2024 price cut); not fetched from the pricing pages by the benchmark.
PRICES = {
    "api_gateway_rest_per_million_requests": 3.50,
    "lambda_per_million_requests": 0.20,
    "lambda_per_gb_second_x86": 0.0000166667,
    "dynamodb_per_million_wru": 0.625,
    "dynamodb_per_million_rru": 0.125,
    "dynamodb_streams_reads_by_lambda": 0.0,
}


def _log(message: str) -> None:
    print(f"[bench.stream {time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


_T0 = time.monotonic()


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the values lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


# -- the request path, in-process -----------------------------------------------------------


def _reading_body(building: str, room: str, sensor: str, ts_ms: int) -> dict[str, Any]:
    from chalicelib.domain.timeutil import format_ms

    return {
        "building": building,
        "room": room,
        "sensor_id": sensor,
        "timestamp": format_ms(ts_ms),
        "temperature": round(20 + (ts_ms // 1000) % 70 / 10, 2),
        "humidity": 40 + (ts_ms // 1000) % 20,
        "co2": 420 + (ts_ms // 1000) % 500,
    }


def request_path(posts: int | None = None) -> dict[str, float]:
    """Calls and units of POST /readings, warm and cold caches; in-process time per request."""
    from chalice.test import Client

    from app import app
    from chalicelib import wiring
    from chalicelib.domain.access import Scope
    from chalicelib.domain.timeutil import now_ms
    from infra.cli.keys import bootstrap_key

    posts = posts or int(os.environ.get("ROOMTEMP_BENCH_STREAM_POSTS", "200"))
    rounds = max(1, posts // 20)
    out: dict[str, float] = {}
    with moto_app() as aws:
        meter: Meter = aws["meter"]
        key = bootstrap_key("bench", [Scope.INGEST], "bench")["key"]
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        base = now_ms() - 2 * 86_400_000
        with Client(app, stage_name="local", project_dir=str(ROOT)) as client:

            def post(body: dict[str, Any]) -> float:
                began = time.perf_counter()
                response = client.http.post(
                    "/readings", headers=headers, body=json.dumps(body).encode()
                )
                elapsed = time.perf_counter() - began
                answer = json.loads(response.body)
                if response.status_code != 201 or answer.get("accepted") != _count(body):
                    raise RuntimeError(
                        f"POST /readings: {response.status_code} {str(answer)[:300]}"
                    )
                return elapsed

            def counted(bodies: list[dict[str, Any]], forget: bool = False) -> dict[str, float]:
                """What posting each body cost (calls, units: the mean per body), and its
                median in-process milliseconds; `forget`: the room cache is cold each time."""
                spent = meter.since()
                seconds = []
                for body in bodies:
                    if forget:
                        wiring.known_rooms().forget()
                    seconds.append(post(body))
                totals = spent()
                return {
                    **{k: v / len(bodies) for k, v in totals.items()},
                    "ms": statistics.median(seconds) * 1000,
                }

            def single(i: int) -> dict[str, Any]:
                return _reading_body("hq", "r1", "s1", base + i)

            def gateway(i: int) -> dict[str, Any]:
                at = base + i
                return {
                    "readings": [_reading_body("gw", f"g{r:03d}", "s1", at) for r in range(100)]
                }

            # The first post warms the key and room caches; the next ones are counted.
            post(single(0))
            warm = counted([single(1 + i) for i in range(posts)])
            out["single_post_dynamodb_calls"] = warm["calls"]
            out["wru_per_reading_single"] = warm["wru"]
            out["single_post_inprocess_ms"] = warm["ms"]
            cold = counted([single(10_000 + i) for i in range(rounds)], forget=True)
            out["single_post_dynamodb_calls_cold_room"] = cold["calls"]
            out["single_post_rru_cold_room"] = cold["rru"]
            out["single_post_inprocess_ms_cold_room"] = cold["ms"]

            # A gateway's batch: 100 rooms, one reading each (the first batch creates the rooms).
            post(gateway(0))
            warm = counted([gateway(1 + i) for i in range(rounds)])
            out["wru_per_reading_batch100_100rooms"] = warm["wru"] / 100
            out["batch100_dynamodb_calls"] = warm["calls"]
            out["batch100_inprocess_ms"] = warm["ms"]
            cold = counted([gateway(10_000 + i) for i in range(rounds)], forget=True)
            out["batch100_dynamodb_calls_cold_rooms"] = cold["calls"]
            out["batch100_rru_cold_rooms"] = cold["rru"]
            out["batch100_inprocess_ms_cold_rooms"] = cold["ms"]

            # One sensor's batch of 100 readings 10 s apart (issue 3's figure): readings only now.
            sensor = [
                {"readings": [single(3_600_000 + i * 1_000_000 + k * 10_000) for k in range(100)]}
                for i in range(rounds)
            ]
            out["wru_per_reading_batch100"] = counted(sensor)["wru"] / 100
    out["wru_per_reading_request_path"] = max(
        out["wru_per_reading_single"], out["wru_per_reading_batch100_100rooms"]
    )
    return {k: round(v, 3) for k, v in out.items()}


def _count(body: dict[str, Any]) -> int:
    return len(body["readings"]) if "readings" in body else 1


# -- the stream consumer, simulated ----------------------------------------------------------


@dataclass
class Arrival:
    """A reading and when it reached the table (simulated ms)."""

    at_ms: int
    reading: Any


@dataclass
class WindowRun:
    """What one simulated batching window did."""

    window_s: float
    batch_size: int
    readings: int = 0
    batches: int = 0
    rollup_wru: float = 0.0
    rollup_items: float = 0.0
    consumer_rru: float = 0.0
    consumer_calls: float = 0.0
    waits_s: list[float] = field(default_factory=list)
    batch_seconds: list[float] = field(default_factory=list)
    batch_readings: list[int] = field(default_factory=list)

    def figures(self, suffix: str, *, full: bool = True) -> dict[str, float]:
        """The run's keys, each ending in `suffix` (a curve's point: not `full`)."""
        n = max(1, self.readings)
        out = {
            f"rollup_wru_per_reading{suffix}": round(self.rollup_wru / n, 4),
            f"rollup_rru_per_reading{suffix}": round(self.consumer_rru / n, 4),
            f"rollup_readings_per_batch{suffix}": round(n / max(1, self.batches), 1),
            f"rollup_wait_mean_s{suffix}": round(statistics.fmean(self.waits_s), 2),
            f"rollup_wait_p99_s{suffix}": round(percentile(self.waits_s, 0.99), 2),
            f"rollup_batch_ms{suffix}": round(statistics.fmean(self.batch_seconds) * 1000, 1),
        }
        if full:
            # A reading waits for its batch to close, then for the batch to be processed.
            lags = [w + s for w, s in self._lags()]
            out.update(
                {
                    f"rollup_items_per_reading{suffix}": round(self.rollup_items / n, 4),
                    f"rollup_calls_per_reading{suffix}": round(self.consumer_calls / n, 4),
                    f"rollup_batch_p99_ms{suffix}": round(
                        percentile(self.batch_seconds, 0.99) * 1000, 1
                    ),
                    f"rollup_lag_mean_s{suffix}": round(statistics.fmean(lags), 2),
                    f"rollup_lag_p99_s{suffix}": round(percentile(lags, 0.99), 2),
                }
            )
        return out

    def _lags(self) -> Iterator[tuple[float, float]]:
        index = 0
        for seconds, count in zip(self.batch_seconds, self.batch_readings, strict=True):
            for wait in self.waits_s[index : index + count]:
                yield wait, seconds
            index += count


def simulated_arrivals(rooms: int, hours: float, rate_s: float) -> list[Arrival]:
    """The simulator's climate for `rooms` rooms of one sensor, a reading every `rate_s`; each
    sensor at a phase of its own, drawn once (sensors are not synchronized)."""
    from chalicelib.domain.models import Reading
    from infra.cli.simulate import Climate, make_rooms

    buildings = math.ceil(rooms / 10)
    profiles = make_rooms(buildings, min(10, rooms), 1, seed=2026)[:rooms]
    climate = Climate(2026)
    period = int(rate_s * 1000)
    draw = random.Random(2026)
    phases = [draw.randrange(period) for _ in profiles]
    arrivals = []
    for step in range(int(hours * 3_600_000 // period)):
        for i, profile in enumerate(profiles):
            at = START_MS + step * period + phases[i]
            body = climate.reading(profile, profile.sensors[0], at)
            reading = Reading(
                tenant="bench",
                building=body["building"],
                room=body["room"],
                sensor_id=body["sensor_id"],
                ts_ms=at,
                temperature=body["temperature"],
                humidity=body["humidity"],
                co2=body["co2"],
            )
            arrivals.append(Arrival(at, reading))
    arrivals.sort(key=lambda a: a.at_ms)
    return arrivals


def batches(
    arrivals: list[Arrival], window_s: float, batch_size: int
) -> Iterator[tuple[int, list[Arrival]]]:
    """(close ms, arrivals) of each batch the event source mapping would hand the consumer."""
    window = int(window_s * 1000)
    index = 0
    while index < len(arrivals):
        opened = arrivals[index].at_ms
        end = index
        while (
            end < len(arrivals)
            and end - index < batch_size
            and arrivals[end].at_ms <= opened + window
        ):
            end += 1
        full = end - index == batch_size
        closed = arrivals[end - 1].at_ms if full else opened + window
        yield closed, arrivals[index:end]
        index = end


def simulate_window(arrivals: list[Arrival], window_s: float, batch_size: int) -> WindowRun:
    """Write the arrivals batch by batch into a fresh table and fold each batch's stream records
    through the app's "rollups" handler; what the consumer wrote, read and took."""
    import boto3

    from app import app
    from chalicelib.aws.items import reading_item
    from infra.streams import StreamReader, invoke, streams_client

    run = WindowRun(window_s, batch_size)
    with moto_app() as aws:
        meter: Meter = aws["meter"]
        writer = boto3.client("dynamodb", region_name="us-east-1")  # not metered
        reader = StreamReader(writer, streams_client(), aws["table"])
        handler = app.handler_map["rollups"]
        for closed, batch in batches(arrivals, window_s, batch_size):
            items = [reading_item(a.reading) for a in batch]
            for start in range(0, len(items), 25):
                chunk = items[start : start + 25]
                writer.batch_write_item(
                    RequestItems={aws["table"]: [{"PutRequest": {"Item": i}} for i in chunk]}
                )
            # The consumer's own rollup writes are on the stream too: the filter drops them.
            records: list[dict[str, Any]] = []
            for _ in range(1000):
                if len(records) >= len(batch):
                    break
                records += reader.read(1000)
            if len(records) != len(batch):
                raise RuntimeError(f"{len(records)} stream records of {len(batch)} written")
            counted = meter.since()
            began = time.perf_counter()
            failed = invoke(handler, records)
            run.batch_seconds.append(time.perf_counter() - began)
            if failed is not None:
                raise RuntimeError(f"the consumer failed from {failed}")
            spent = counted()
            run.rollup_wru += spent["wru"]
            run.rollup_items += spent["writes"]
            run.consumer_rru += spent["rru"]
            run.consumer_calls += spent["calls"]
            run.readings += len(batch)
            run.batches += 1
            run.batch_readings.append(len(batch))
            run.waits_s += [(closed - a.at_ms) / 1000 for a in batch]
    return run


def _windows() -> list[float]:
    text = os.environ.get("ROOMTEMP_BENCH_STREAM_WINDOWS", ",".join(map(str, WINDOWS)))
    return [float(w) for w in text.split(",") if w.strip()]


def stream_figures() -> dict[str, float]:
    """Rollup units per reading and lag: the prod stage's batching (50 rooms x 2 h), and the
    curve over batching windows (10 rooms x 1 h); at one reading a room per 10 s and per 60 s."""
    from infra.operations import STAGES

    prod = STAGES["prod"].stream
    rooms = int(os.environ.get("ROOMTEMP_BENCH_STREAM_ROOMS", "50"))
    hours = float(os.environ.get("ROOMTEMP_BENCH_STREAM_HOURS", "2"))
    curve_rooms = int(os.environ.get("ROOMTEMP_BENCH_STREAM_CURVE_ROOMS", "10"))
    curve_hours = float(os.environ.get("ROOMTEMP_BENCH_STREAM_CURVE_HOURS", "1"))
    out: dict[str, float] = {
        "rollup_sim_rooms": rooms,
        "rollup_sim_hours": hours,
        "rollup_sim_window_s": prod.window_s,
        "rollup_sim_batch_size": prod.batch_size,
        "rollup_curve_rooms": curve_rooms,
        "rollup_curve_hours": curve_hours,
    }
    for rate, label in ((10, ""), (60, "_60s")):
        arrivals = simulated_arrivals(rooms, hours, rate)
        run = simulate_window(arrivals, prod.window_s, prod.batch_size)
        out.update(run.figures(f"_sim{label}"))
        _log(f"prod window, a reading per room every {rate} s: {run.figures('')}")
        curve = simulated_arrivals(curve_rooms, curve_hours, rate)
        for window in _windows():
            run = simulate_window(curve, window, prod.batch_size)
            out.update(run.figures(f"{label}_window_{window:g}", full=False))
            _log(f"window {window:g} s, every {rate} s: {run.figures('')}")
    return out


def costs(figures: dict[str, float]) -> dict[str, float]:
    """USD per million readings from the counted calls and units (PRICES, prod's memory sizes,
    durations measured in-process), for single posts and gateway batches of 100."""
    from infra.operations import STAGES

    prod = STAGES["prod"]
    gb_s = PRICES["lambda_per_gb_second_x86"]
    million = 1e6

    def lambda_cost(invocations: float, ms: float, memory_mb: int) -> float:
        # Lambda bills each invocation's duration rounded up to the millisecond.
        return invocations * (
            PRICES["lambda_per_million_requests"] / million
            + math.ceil(ms) / 1000 * memory_mb / 1024 * gb_s
        )

    # The stream's consumer: the same for both ways in (the stream sees readings, not requests).
    per_batch = figures["rollup_readings_per_batch_sim"]
    consumer = {
        "rollup_writes": million
        * figures["rollup_wru_per_reading_sim"]
        * PRICES["dynamodb_per_million_wru"]
        / million,
        "rollup_reads": million
        * figures["rollup_rru_per_reading_sim"]
        * PRICES["dynamodb_per_million_rru"]
        / million,
        "rollup_lambda": lambda_cost(
            million / per_batch, figures["rollup_batch_ms_sim"], prod.rollups.memory_mb
        ),
    }
    out: dict[str, float] = {}
    for way, requests, wru, ms in (
        ("single", million, figures["wru_per_reading_single"], figures["single_post_inprocess_ms"]),
        (
            "batch100_100rooms",
            million / 100,
            figures["wru_per_reading_batch100_100rooms"],
            figures["batch100_inprocess_ms"],
        ),
    ):
        parts = {
            "api_gateway": requests * PRICES["api_gateway_rest_per_million_requests"] / million,
            "api_lambda": lambda_cost(requests, ms, prod.api.memory_mb),
            "request_writes": million * wru * PRICES["dynamodb_per_million_wru"] / million,
            **consumer,
        }
        out[f"cost_per_million_readings_usd_{way}"] = round(sum(parts.values()), 3)
        out.update({f"cost_{way}_{k}_usd": round(v, 4) for k, v in parts.items()})
    out["cost_floor_dynamodb_only_usd"] = PRICES["dynamodb_per_million_wru"]
    return out


def run() -> dict[str, float]:
    """Every figure of issue 16: request path, stream consumer, HTTP, cost."""
    from bench import stack

    out = request_path()
    _log(f"request path: {out}")
    out.update(stream_figures())
    out.update(costs(out))
    if os.environ.get("ROOMTEMP_BENCH_STREAM_HTTP", "1") != "0":
        out.update(stack.run())
    return out


def main() -> None:
    started = time.monotonic()
    figures = run()
    figures["bench_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
