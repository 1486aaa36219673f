"""Issue 2's figures: single and batch POST through the handler, items read by an average, import.

Keys: post_single_vs_hello_ratio (post_single_us, hello_us), batch_readings_per_s,
avg_items_read_1k, avg_items_read_100k, import_vs_floor_ratio (import_app_ms, import_floor_ms).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

from bench.measure import Measurement, at_least, at_most, equal_to, median_seconds_per_call

ROOT = Path(__file__).resolve().parent.parent
# Readings are dated from here on, one millisecond apart: every POST is a new, accepted write.
EPOCH_MS = 1_700_000_000_000
_sequence = count()


class FakeLambdaContext:
    """The few attributes of a Lambda context that Chalice or logging may touch."""

    function_name = "roomtemp-bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:roomtemp-bench"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/roomtemp-bench"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def api_event(
    method: str, resource: str, body: str | None = None, key: str | None = None
) -> dict[str, Any]:
    """An API Gateway (REST, proxy) event as Lambda hands it to Chalice."""
    headers = {"content-type": "application/json", "host": "bench.example"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    return {
        "resource": resource,
        "path": resource,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": "/api" + resource,
            "stage": "api",
            "requestId": "bench",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def iso(ms: int) -> str:
    """Epoch ms as ISO 8601 with Z, as a device would send it."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def fresh_readings(n: int) -> list[dict[str, Any]]:
    """n readings no earlier POST sent: distinct (sensor, timestamp)."""
    out = []
    for _ in range(n):
        i = next(_sequence)
        out.append(
            {
                "building": "hq",
                "room": f"room-{i % 50}",
                "sensor_id": f"s{i % 7}",
                "timestamp": iso(EPOCH_MS + i),
                "temperature": 20.0 + (i % 100) / 10,
                "humidity": 40.0 + i % 20,
            }
        )
    return out


@contextmanager
def in_memory_app() -> Iterator[tuple[Any, str]]:
    """roomtemp's Chalice app over fresh in-memory repositories, and an ingest key for it."""
    from app import app
    from chalicelib import wiring
    from chalicelib.domain.access import Scope
    from infra.cli.keys import bootstrap_key
    from tests.fakes import in_memory_repositories

    wiring.override(repositories=in_memory_repositories())
    try:
        yield app, bootstrap_key("bench", [Scope.INGEST], "bench")["key"]
    finally:
        wiring.reset()


def hello_app() -> Any:
    """Chalice's hello world: the floor any Chalice route pays."""
    from chalice.app import Chalice

    hello = Chalice(app_name="hello")

    @hello.route("/")
    def index() -> dict[str, str]:
        return {"hello": "world"}

    return hello


def _checked(app: Any, status: int) -> Any:
    context = FakeLambdaContext()

    def call(event: dict[str, Any]) -> None:
        response = app(event, context)
        if response["statusCode"] != status:
            raise RuntimeError(f"expected {status}, got {response}")

    return call


def post_single() -> list[Measurement]:
    """One reading per POST through app.app(event, context) vs hello world, same rounds."""
    hello_event = api_event("GET", "/")
    with in_memory_app() as (app, key):
        times = median_seconds_per_call(
            {
                "post": (
                    _checked(app, 201),
                    lambda n: [
                        api_event("POST", "/readings", json.dumps(r), key)
                        for r in fresh_readings(n)
                    ],
                ),
                "hello": (_checked(hello_app(), 200), lambda n: [hello_event] * n),
            },
            number=2000,
            repeat=9,
        )
    post_us, hello_us = times["post"] * 1e6, times["hello"] * 1e6
    return [
        Measurement("post_single_us", round(post_us, 1), "µs", "single-reading POST /readings"),
        Measurement("hello_us", round(hello_us, 1), "µs", "hello-world Chalice route"),
        Measurement(
            "post_single_vs_hello_ratio",
            round(post_us / hello_us, 2),
            "×",
            "single POST / hello world",
            at_most(2.0),
        ),
    ]


def post_batch() -> list[Measurement]:
    """One POST of 1000 fresh readings through the handler, in-memory repository."""
    size = 1000

    with in_memory_app() as (app, key):

        def bodies(n: int) -> list[dict[str, Any]]:
            return [
                api_event("POST", "/readings", json.dumps({"readings": fresh_readings(size)}), key)
                for _ in range(n)
            ]

        times = median_seconds_per_call(
            {"batch": (_checked(app, 201), bodies)}, number=10, repeat=7
        )
    return [
        Measurement(
            "batch_readings_per_s",
            round(size / times["batch"]),
            "readings/s",
            "POST of 1000 readings",
            at_least(100_000),
        )
    ]


@contextmanager
def moto_dynamodb() -> Iterator[Any]:
    """An in-process moto DynamoDB and a client for it (no endpoint override, fake keys)."""
    import boto3
    from moto import mock_aws

    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL") or name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            del os.environ[name]
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    try:
        with mock_aws():
            yield boto3.client("dynamodb", region_name="us-east-1")
    finally:
        os.environ.clear()
        os.environ.update(saved)


def items_read_by_average() -> list[Measurement]:
    """ScannedCount of one 15-minute average over rooms with 1,000 and 100,000 readings."""
    from chalicelib.aws.dynamo import DynamoTable
    from chalicelib.aws.items import reading_item
    from chalicelib.aws.readings import DynamoReadingRepository
    from chalicelib.domain.models import Metric, Reading
    from chalicelib.services import readings as services
    from infra.tables import create_table

    step_ms = 10_000  # one reading per 10 s
    end_ms = EPOCH_MS + 100_000 * step_ms  # both histories end here
    scanned: list[int] = []

    def count_scanned(parsed: dict[str, Any], **_: Any) -> None:
        scanned.append(int(parsed.get("ScannedCount", 0)))

    results = {}
    with moto_dynamodb() as client:
        repo = DynamoReadingRepository(DynamoTable(client, create_table(client, "roomtemp-bench")))
        client.meta.events.register("after-call.dynamodb.Query", count_scanned)
        for history in (1_000, 100_000):
            room = f"history-{history}"
            repo.batch_write(
                [
                    reading_item(
                        Reading(
                            tenant="bench",
                            building="hq",
                            room=room,
                            sensor_id="s1",
                            ts_ms=end_ms - k * step_ms,
                            temperature=21.0 + k % 10 / 10,
                        )
                    )
                    for k in range(history)
                ]
            )
            scanned.clear()
            stats = services.window_average(
                repo, "bench", "hq", room, metric=Metric.TEMPERATURE, minutes=15, at_ms=end_ms
            )
            if stats.count != 90:  # (end - 15 min, end] at one reading per 10 s
                raise RuntimeError(f"expected 90 readings in the window, got {stats.count}")
            results[history] = sum(scanned)
    return [
        Measurement("avg_items_read_1k", results[1_000], "items", "15-min average, 1k history"),
        Measurement(
            "avg_items_read_100k",
            results[100_000],
            "items",
            "15-min average, 100k history",
            equal_to(results[1_000]),
        ),
    ]


_TIMED_IMPORT = (
    "import time; t = time.process_time(); import {modules}; print(time.process_time() - t)"
)


def _import_seconds(modules: str) -> float:
    """CPU seconds a fresh interpreter spends importing `modules` (interpreter start excluded)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    out = subprocess.run(
        [sys.executable, "-c", _TIMED_IMPORT.format(modules=modules)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip())


def import_costs(top: int = 8) -> list[tuple[int, str]]:
    """The `top` packages `import app` spends most on beyond chalice, boto3 and pydantic (µs)."""
    floor = {"chalice", "boto3", "botocore", "pydantic", "pydantic_core"}
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import chalice, boto3, pydantic; import app"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    costs = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
            continue
        _, cumulative, name = (p.strip() for p in line.split(":", 1)[1].split("|"))
        top_level = name.split(".")[0]
        if top_level not in floor and name == name.lstrip() and "." not in name:
            costs.append((int(cumulative), name))
    return sorted(costs, reverse=True)[:top]


def cold_import() -> list[Measurement]:
    """`import app` vs `import chalice, boto3, pydantic`, each in fresh processes, taking turns."""
    app_s, floor_s = [], []
    for _ in range(15):
        app_s.append(_import_seconds("app"))
        floor_s.append(_import_seconds("chalice, boto3, pydantic"))
    app_ms, floor_ms = statistics.median(app_s) * 1000, statistics.median(floor_s) * 1000
    ratio = round(app_ms / floor_ms, 3)
    if ratio > 1.15:
        listing = ", ".join(f"{name} {us / 1000:.1f} ms" for us, name in import_costs())
        print(f"import app above the floor; its own imports cost: {listing}", file=sys.stderr)
    return [
        Measurement("import_app_ms", round(app_ms, 1), "ms", "cold import app"),
        Measurement(
            "import_floor_ms", round(floor_ms, 1), "ms", "cold import chalice, boto3, pydantic"
        ),
        Measurement("import_vs_floor_ratio", ratio, "×", "import app / floor", at_most(1.15)),
    ]


def run() -> list[Measurement]:
    """Every figure of issue 2, in order."""
    return post_single() + post_batch() + items_read_by_average() + cold_import()
