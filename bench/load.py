"""Load test: N concurrent clients against the local stack for a fixed time; nothing may be lost.

    python -m bench.load                  # 8 clients for 20 s (LOAD_CLIENTS, LOAD_SECONDS)

Starts its own stack on free 127.0.0.1 ports (moto's server in a subprocess, the table, keys,
`chalice local`, and the table stream's poller at the local window in this process, as
`make run` has it), runs mixed traffic — POST batches of 100 readings and GETs of average, latest
and a readings page — then checks that every reading the API acknowledged is stored exactly once
and, once the stream's backlog is folded, that the minute rollups count each stored reading once.
`run()` returns the figures (keys load_*) for bench/results.json.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from infra.local import (
    LOCALHOST,
    aws_env,
    bootstrap,
    free_port,
    start_api,
    start_emulator_process,
    stop_process,
)

TABLE = "roomtemp"  # `chalice local` takes the stage's table name over the environment
BATCH = 100
ROOMS = 4
BUILDING = "load"
TENANT = "load"  # the tenant of the load keys


@dataclass
class Tally:
    """One client's measurements."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    acknowledged: set[tuple[str, int, str]] = field(default_factory=set)  # (room, ts_ms, sensor)
    accepted: int = 0


def call(base: str, key: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    return status, json.loads(raw) if raw else None


def iso(ts_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ms // 1000)) + f".{ts_ms % 1000:03d}Z"


def client(
    number: int, base: str, keys: dict[str, str], deadline: float, start_ms: int, tally: Tally
) -> None:
    """Mixed traffic until the deadline: half POST batches, half GETs."""
    rng = random.Random(number)
    sensor = f"c{number}"
    sequence = 0
    written: list[str] = []  # rooms this client has written to (others may not exist yet)
    while time.monotonic() < deadline:
        room = f"room-{rng.randrange(ROOMS)}"
        if rng.random() < 0.5 or not written:
            readings = []
            for _ in range(BATCH):
                readings.append(
                    {
                        "building": BUILDING,
                        "room": room,
                        "sensor_id": sensor,
                        "timestamp": iso(start_ms + sequence),
                        "temperature": round(rng.uniform(18, 26), 2),
                    }
                )
                sequence += 1
            method, path, body, key = "POST", "/readings", {"readings": readings}, keys["ingest"]
        else:
            method, body, key = "GET", None, keys["read"]
            room = rng.choice(written)
            room_path = f"/buildings/{BUILDING}/rooms/{room}"
            path = rng.choice(
                [
                    room_path + "/average?minutes=120",
                    room_path + "/latest",
                    room_path + f"/readings?limit=100&from={iso(start_ms)}",
                ]
            )
        for _attempt in range(10):  # a 503'd POST is resent, as a device would
            began = time.perf_counter()
            try:
                status, answer = call(base, key, method, path, body)
            except OSError:
                status, answer = 0, None
            tally.latencies_ms.append((time.perf_counter() - began) * 1000)
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
            if status not in (200, 201):
                tally.errors += 1
            if status != 503 or method == "GET":
                break
        if method == "POST" and status == 201 and body is not None:
            sent: list[dict[str, Any]] = body["readings"]
            written.append(room)
            tally.accepted += answer["accepted"]
            tally.acknowledged.update(
                (r["room"], start_ms + i, sensor)
                for i, r in enumerate(sent, start=sequence - BATCH)
            )


def stored_in_table(endpoint: str) -> tuple[set[tuple[str, int, str]], int]:
    """The load building's stored readings as (room, ts_ms, sensor), and how many readings its
    minute rollups count — read from the table itself. Rollup items share the room partitions,
    so readings are counted by their sort-key range, not by partition."""
    import boto3

    from chalicelib.aws import keys

    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    readings: set[tuple[str, int, str]] = set()
    rolled_up = 0
    for number in range(ROOMS):
        room = f"room-{number}"
        kwargs: dict[str, Any] = {
            "TableName": TABLE,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": keys.room_pk(TENANT, BUILDING, room)}},
        }
        while True:
            page = dynamodb.query(**kwargs)
            for item in page["Items"]:
                sk = item["sk"]["S"]
                if keys.READINGS_LOW <= sk <= keys.READINGS_HIGH:
                    ts_ms, sensor = keys.parse_reading_sk(sk)
                    readings.add((room, ts_ms, sensor))
                elif sk.startswith(keys.MINUTE_PREFIX):
                    rolled_up += int(item["n"]["N"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return readings, rolled_up


def stream_poller() -> tuple[Any, Any]:
    """The table stream's consumer (the app's "rollups" handler, in this process) fed by a poller
    with the local window, as make run runs it; and its stream reader."""
    from chalicelib import wiring
    from infra.operations import LOCAL_STREAM
    from infra.streams import StreamPoller, StreamReader, streams_client

    reader = StreamReader(wiring.aws_client("dynamodb"), streams_client(), TABLE)
    poller = StreamPoller(
        reader,
        batch_size=LOCAL_STREAM.batch_size,
        window_s=LOCAL_STREAM.window_s,
        max_attempts=LOCAL_STREAM.retry_attempts + 1,
    ).start()
    return poller, reader


def finish(poller: Any, reader: Any) -> None:
    """Stop the poller once its batch in hand is done, then fold what is left on the stream."""
    from app import app
    from infra.streams import drain

    poller.stop()
    while any(t.name == "stream-poller" and t.is_alive() for t in threading.enumerate()):
        time.sleep(0.1)
    drain(reader, app.handler_map["rollups"])
    if poller.failed:
        raise RuntimeError(f"the stream consumer gave up on {poller.failed} records")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(clients: int | None = None, seconds: float | None = None) -> dict[str, float]:
    """Start the stack, load it, check accepted == stored; the figures."""
    clients = clients or int(os.environ.get("LOAD_CLIENTS", "8"))
    seconds = seconds or float(os.environ.get("LOAD_SECONDS", "20"))
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(name, value)
    emulator_port = free_port()
    emulator = start_emulator_process(emulator_port)
    api = poller = None
    try:
        endpoint = f"http://{LOCALHOST}:{emulator_port}"
        bootstrap(endpoint, TABLE)
        env = aws_env(endpoint, TABLE)
        os.environ.update({"AWS_ENDPOINT_URL": endpoint, "ROOMTEMP_TABLE_NAME": TABLE})
        from chalicelib import wiring
        from chalicelib.domain.access import Scope
        from infra.cli.keys import bootstrap_key

        wiring.reset()
        keys = {
            "ingest": bootstrap_key(TENANT, [Scope.INGEST], "load devices")["key"],
            "read": bootstrap_key(TENANT, [Scope.READ], "load readers")["key"],
        }
        api_port = free_port()
        api = start_api(api_port, env, quiet=True)
        poller, reader = stream_poller()
        base = f"http://{LOCALHOST}:{api_port}"
        start_ms = (int(time.time()) - 3600) * 1000
        tallies = [Tally() for _ in range(clients)]
        began = time.monotonic()
        deadline = began + seconds
        threads = [
            threading.Thread(target=client, args=(n, base, keys, deadline, start_ms, t))
            for n, t in enumerate(tallies)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + 120)
        elapsed = time.monotonic() - began
        folded = time.monotonic()
        finish(poller, reader)
        fold_s = time.monotonic() - folded
        stored, rolled_up = stored_in_table(endpoint)
    finally:
        if poller is not None:
            poller.stop()
        if api is not None:
            stop_process(api)
        stop_process(emulator)
    latencies = [x for t in tallies for x in t.latencies_ms]
    acknowledged = set().union(*(t.acknowledged for t in tallies))
    accepted = sum(t.accepted for t in tallies)
    return {
        "load_clients": float(clients),
        "load_duration_s": round(elapsed, 1),
        "load_requests": float(len(latencies)),
        "load_requests_per_s": round(len(latencies) / elapsed, 1),
        "load_readings_per_s": round(accepted / elapsed, 1),
        "load_p50_ms": round(statistics.median(latencies), 1),
        "load_p99_ms": round(percentile(latencies, 0.99), 1),
        "load_errors": float(sum(t.errors for t in tallies)),
        "load_accepted": float(accepted),
        "load_acknowledged": float(len(acknowledged)),
        "load_stored": float(len(stored)),
        # Acknowledged (in a 201) but not in the table.
        "load_lost": float(len(acknowledged - stored)),
        # Every reading is new (own sensor, increasing time), so each is accepted once at most;
        # the minute rollups behind statistics must count each stored reading exactly once.
        "load_double_counted": float(max(0, accepted - len(acknowledged))),
        "load_rollup_count_diff": float(rolled_up - len(stored)),
        # The stream's backlog at the end of the run, folded after it (seconds).
        "load_rollup_backlog_s": round(fold_s, 1),
        # Stored by a request that never got its 201 (a client gave up after 503s): not lost.
        "load_stored_unacknowledged": float(len(stored - acknowledged)),
        **{f"load_status_{code}": float(n) for code, n in sorted(statuses(tallies).items())},
    }


def statuses(tallies: list[Tally]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for tally in tallies:
        for code, n in tally.statuses.items():
            merged[code] = merged.get(code, 0) + n
    return merged


def main() -> None:
    results = run()
    print(json.dumps(results, indent=2))
    if results["load_lost"] or results["load_double_counted"] or results["load_rollup_count_diff"]:
        sys.exit("readings lost or double-counted under load")


if __name__ == "__main__":
    main()
