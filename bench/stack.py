"""Issue 16's HTTP figures, against the real local stack on free 127.0.0.1 ports.

    python -m bench.stack          (prints the figures as JSON; bench/stream.py collects run())

`infra.local.local_stack` runs what `make run` runs: the embedded emulator (moto's server, with
its stream poller at the local window, 1 s, and the ingest poller) in this process and
`chalice local` in its own. The clients run in a child process (`--child`), so that they do not
compete with the emulator for this process's GIL:

- `http_single_*`: CLIENTS threads, each posting one reading per request to a room of its own
  (new timestamps: none is a duplicate) for SECONDS;
- `http_batch_*`: POST /readings of 1,000 readings over 20 rooms vs BatchWriteItem (25 a call, as
  many in flight as the app's writer keeps) of the same reading items (aws/items.reading_item),
  each with its own sensor and time range, taking turns batch by batch;
- `avg_*`: GET .../average (15 minutes, temperature) of a room holding 1,000 readings in that
  window vs a bare Query of the same window with the app's projection (aws/readings.window),
  taking turns; medians;
- `rollup_lag_*`: LAG_ROOMS threads post single readings, each in a minute of its own, one at a
  time; after each answer, GET .../stats of that minute every 50 ms until it counts the reading.

Sizes: ROOMTEMP_BENCH_HTTP_CLIENTS (8), ROOMTEMP_BENCH_HTTP_SECONDS (20),
ROOMTEMP_BENCH_HTTP_BATCHES (10 per side), ROOMTEMP_BENCH_AVG_CALLS (31),
ROOMTEMP_BENCH_LAG_READINGS (100), ROOMTEMP_BENCH_LAG_ROOMS (4).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TABLE = "roomtemp-bench"
BUILDING = "bench"
TENANT = "bench"  # the tenant of the key the child process is given
BATCH_ROOMS = 20
BATCH_SIZE = 1000
MINUTE_MS = 60_000


def _size(name: str, default: str) -> int:
    return int(os.environ.get(f"ROOMTEMP_BENCH_{name}", default))


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the values lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def run() -> dict[str, float]:
    """Start the local stack, measure from a child process, stop the stack; the figures."""
    from infra.local import FAKE_CREDENTIALS, free_port, issue_key, local_stack

    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL"):
            del os.environ[name]
    for name, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    api_port, emulator_port = free_port(), free_port()
    # local_stack uses LocalStack (or anything) answering where LOCALSTACK_HOST says, default
    # localhost:4566: point it at our own free port, so it starts an emulator of its own.
    os.environ["LOCALSTACK_HOST"] = f"127.0.0.1:{emulator_port}"
    try:
        with local_stack(api_port, emulator_port, TABLE, quiet=True) as (endpoint, api, _):
            key = issue_key(endpoint, TABLE, TENANT, ["ingest", "read"], "bench.stack")
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            child = subprocess.run(
                [sys.executable, "-m", "bench.stack", "--child", endpoint, api, key],
                cwd=ROOT,
                env=env,
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    figures: dict[str, float] = json.loads(child.stdout.strip().splitlines()[-1])
    return figures


# -- the child: HTTP clients ---------------------------------------------------------------


def call(url: str, key: str, method: str = "GET", body: Any = None) -> tuple[int, Any, float]:
    """(status, decoded answer, seconds) of one request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except OSError:
        status, raw = 0, b""
    seconds = time.perf_counter() - began
    try:
        answer = json.loads(raw) if raw else None
    except ValueError:
        answer = None
    return status, answer, seconds


def iso(ts_ms: int) -> str:
    """Epoch ms as the API's ISO 8601 form."""
    from chalicelib.domain.timeutil import format_ms

    return format_ms(ts_ms)


def reading(room: str, sensor: str, ts_ms: int) -> dict[str, Any]:
    """A reading as POST /readings takes it."""
    return {
        "building": BUILDING,
        "room": room,
        "sensor_id": sensor,
        "timestamp": iso(ts_ms),
        "temperature": round(20 + ts_ms % 70 / 10, 1),
    }


def single_posts(api: str, key: str, clients: int, seconds: float) -> dict[str, float]:
    """Readings/s and latency of single-reading POSTs from `clients` threads."""
    from chalicelib.domain.timeutil import now_ms

    base = now_ms() - 6 * 3_600_000
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stored = [0] * clients
    errors = [0] * clients
    ready = threading.Barrier(clients + 1)
    deadline = [0.0]

    def work(n: int) -> None:
        room, sensor, ts = f"single{n:02d}", f"c{n}", base
        call(f"{api}/readings", key, "POST", reading(room, sensor, ts))  # creates the room
        ready.wait()
        while time.monotonic() < deadline[0]:
            ts += 1
            status, answer, spent = call(f"{api}/readings", key, "POST", reading(room, sensor, ts))
            latencies[n].append(spent)
            if status == 201 and answer and answer.get("accepted") == 1:
                stored[n] += 1
            else:
                errors[n] += 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + seconds
    ready.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    every = [x for per in latencies for x in per]
    return {
        "http_single_clients": float(clients),
        "http_single_seconds": round(elapsed, 1),
        "http_single_readings_per_s": round(sum(stored) / elapsed, 1),
        "http_single_p50_ms": round(statistics.median(every) * 1000, 1),
        "http_single_p99_ms": round(percentile(every, 0.99) * 1000, 1),
        "http_single_errors": float(sum(errors)),
    }


def batch_vs_raw(api: str, key: str, endpoint: str, batches: int) -> dict[str, float]:
    """POST /readings of 1,000 readings vs BatchWriteItem of the same items, taking turns."""
    import boto3

    from chalicelib.aws import keys
    from chalicelib.aws.dynamo import DynamoTable
    from chalicelib.aws.items import reading_item
    from chalicelib.domain.models import Reading
    from chalicelib.domain.timeutil import now_ms
    from chalicelib.settings import get_settings

    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    table = DynamoTable(client, TABLE, concurrency=get_settings().write_concurrency)
    per_room = BATCH_SIZE // BATCH_ROOMS
    base = now_ms() - 20 * 3_600_000

    def places(number: int) -> list[tuple[str, int]]:
        first = base + number * per_room * 1000
        return [
            (f"bulk{r:02d}", first + k * 1000) for r in range(BATCH_ROOMS) for k in range(per_room)
        ]

    def post(number: int) -> float:
        body = {"readings": [reading(room, "http", ts) for room, ts in places(number)]}
        status, answer, spent = call(f"{api}/readings", key, "POST", body)
        if status != 201 or answer["accepted"] != BATCH_SIZE:
            raise RuntimeError(f"batch POST: {status} {str(answer)[:300]}")
        return spent

    def items(sensor: str, number: int) -> list[dict[str, Any]]:
        out = []
        for room, ts in places(number):
            temperature = reading(room, sensor, ts)["temperature"]
            stored = Reading(BUILDING, room, sensor, ts, temperature, tenant=TENANT)
            out.append(reading_item(stored))
        return out

    def raw(number: int) -> float:
        puts = items("raw", number)
        began = time.perf_counter()
        table.batch_write(puts=puts)
        return time.perf_counter() - began

    def insert(number: int) -> float:
        # What the app sends for the batch: PartiQL INSERTs (25 a call) with its write token.
        puts = [{**item, keys.WRITE_TOKEN: {"S": f"t{number}"}} for item in items("ins", number)]
        began = time.perf_counter()
        stored = table.insert_new(puts, token=keys.WRITE_TOKEN)
        if not all(stored):
            raise RuntimeError("INSERTs refused")
        return time.perf_counter() - began

    post(0)  # creates the rooms; no side's first batch is timed
    raw(0)
    insert(0)
    http_s, raw_s, insert_s = [], [], []
    for number in range(1, batches + 1):
        http_s.append(post(number))
        raw_s.append(raw(number))
        insert_s.append(insert(number))
    http_rate = batches * BATCH_SIZE / sum(http_s)
    raw_rate = batches * BATCH_SIZE / sum(raw_s)
    insert_rate = batches * BATCH_SIZE / sum(insert_s)
    return {
        "http_batch_readings_per_s": round(http_rate, 1),
        "raw_batchwrite_same_items_per_s": round(raw_rate, 1),
        "http_batch_vs_raw_ratio": round(http_rate / raw_rate, 3),
        "http_batch_p50_ms": round(statistics.median(http_s) * 1000, 1),
        # The emulator's cost of the app's own write call, without HTTP, validation or the app.
        "raw_insert_same_items_per_s": round(insert_rate, 1),
        "http_batch_vs_raw_insert_ratio": round(http_rate / insert_rate, 3),
    }


def average_vs_query(api: str, key: str, endpoint: str, calls: int) -> dict[str, float]:
    """Median GET .../average of a room with 1,000 readings in 15 minutes vs a bare Query."""
    import boto3

    from chalicelib.aws import keys
    from chalicelib.domain.timeutil import now_ms

    at = now_ms() - 2 * 3_600_000 - 123
    room = "average"
    readings = [reading(room, "a1", at - k * 900) for k in range(1000)]
    status, answer, _ = call(f"{api}/readings", key, "POST", {"readings": readings})
    if status != 201:
        raise RuntimeError(f"average seed: {status} {str(answer)[:300]}")
    settle(api, key, 99)  # the stream poller folds them first
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    low, high = keys.window_bounds(at - 15 * MINUTE_MS, at)
    query = {
        "TableName": TABLE,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
        "ExpressionAttributeValues": {
            ":pk": {"S": keys.room_pk(TENANT, BUILDING, room)},
            ":low": {"S": low},
            ":high": {"S": high},
        },
        "ProjectionExpression": "pk, sk, #m",
        "ExpressionAttributeNames": {"#m": "temperature"},
    }
    url = f"{api}/buildings/{BUILDING}/rooms/{room}/average?" + urllib.parse.urlencode(
        {"minutes": 15, "at": iso(at), "metric": "temperature"}
    )

    def bare() -> float:
        began = time.perf_counter()
        kwargs, found = dict(query), 0
        while True:
            page = client.query(**kwargs)
            found += page["Count"]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        spent = time.perf_counter() - began
        if found != 1000:
            raise RuntimeError(f"the Query found {found} readings")
        return spent

    def http() -> float:
        status, answer, spent = call(url, key)
        if status != 200 or answer["count"] != 1000:
            raise RuntimeError(f"average: {status} {str(answer)[:300]}")
        return spent

    http(), bare()  # warm
    http_s, query_s = [], []
    for _ in range(calls):
        http_s.append(http())
        query_s.append(bare())
    http_ms, query_ms = statistics.median(http_s) * 1000, statistics.median(query_s) * 1000
    return {
        "avg_http_p50_ms": round(http_ms, 1),
        "avg_query_p50_ms": round(query_ms, 1),
        "avg_http_vs_query_ratio": round(http_ms / query_ms, 3),
    }


def rollup_lag(api: str, key: str, readings: int, rooms: int) -> dict[str, float]:
    """Seconds from a single POST's answer until the room's statistics count the reading."""
    from chalicelib.domain.timeutil import now_ms

    first = now_ms() - 86_400_000
    first -= first % MINUTE_MS
    lags: list[list[float]] = [[] for _ in range(rooms)]
    missed = [0] * rooms

    def work(n: int) -> None:
        room = f"lag{n}"
        for k in range(math.ceil(readings / rooms)):
            minute = first + k * MINUTE_MS
            status, _, _ = call(
                f"{api}/readings", key, "POST", reading(room, "l1", minute + 30_000)
            )
            answered = time.perf_counter()
            if status != 201:
                missed[n] += 1
                continue
            url = f"{api}/buildings/{BUILDING}/rooms/{room}/stats?" + urllib.parse.urlencode(
                {"from": iso(minute), "to": iso(minute + MINUTE_MS), "metric": "temperature"}
            )
            while time.perf_counter() - answered < 60:
                status, answer, _ = call(url, key)
                if status == 200 and answer["count"] >= 1:
                    lags[n].append(time.perf_counter() - answered)
                    break
                time.sleep(0.05)
            else:
                missed[n] += 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(rooms)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [x for per in lags for x in per]
    return {
        "rollup_lag_readings": float(len(every)),
        "rollup_lag_mean_s": round(statistics.fmean(every), 2),
        "rollup_lag_p50_s": round(statistics.median(every), 2),
        "rollup_lag_p99_s": round(percentile(every, 0.99), 2),
        "rollup_lag_missed": float(sum(missed)),
    }


def settle(api: str, key: str, number: int) -> float:
    """Wait until the stream poller has folded everything written so far (a probe reading,
    written last, is counted: the emulator's stream has one shard, delivered in order);
    the seconds waited."""
    from chalicelib.domain.timeutil import now_ms

    minute = now_ms() - 2 * 86_400_000 + number * MINUTE_MS
    minute -= minute % MINUTE_MS
    began = time.perf_counter()
    call(f"{api}/readings", key, "POST", reading("probe", "p1", minute))
    url = f"{api}/buildings/{BUILDING}/rooms/probe/stats?" + urllib.parse.urlencode(
        {"from": iso(minute), "to": iso(minute + MINUTE_MS), "metric": "temperature"}
    )
    while time.perf_counter() - began < 600:
        status, answer, _ = call(url, key)
        if status == 200 and answer["count"] >= 1:
            break
        time.sleep(0.2)
    return time.perf_counter() - began


def measure(endpoint: str, api: str, key: str) -> dict[str, float]:
    """Every HTTP figure, in turn, each once the stream poller is idle (the child process)."""
    steps: dict[str, Callable[[], dict[str, float]]] = {
        "lag": lambda: rollup_lag(api, key, _size("LAG_READINGS", "100"), _size("LAG_ROOMS", "4")),
        "single": lambda: single_posts(
            api, key, _size("HTTP_CLIENTS", "8"), float(_size("HTTP_SECONDS", "20"))
        ),
        "batch": lambda: batch_vs_raw(api, key, endpoint, _size("HTTP_BATCHES", "10")),
        "average": lambda: average_vs_query(api, key, endpoint, _size("AVG_CALLS", "31")),
    }
    out: dict[str, float] = {}
    started = time.monotonic()
    for number, (name, step) in enumerate(steps.items()):
        waited = settle(api, key, number)
        figures = step()
        out.update(figures)
        print(
            f"[bench.stack {time.monotonic() - started:6.1f}s] {name} (after {waited:.1f} s "
            f"for the stream poller): {figures}",
            file=sys.stderr,
            flush=True,
        )
    return out


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        endpoint, api, key = argv[1:4]
        print(json.dumps(measure(endpoint, api, key)))
        return
    print(json.dumps(run(), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
