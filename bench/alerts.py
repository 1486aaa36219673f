"""Alert evaluation's extra DynamoDB calls per stream batch (moto in-process, calls counted).

    python -m bench.alerts

One building of 10 rooms, 10 readings per room per batch (100 records); the stream consumer's
rollup fold runs first, then alert evaluation. Counted: the DynamoDB API calls of the fold alone
(no rules), and those evaluation adds with one building-wide rule, cold (rules read) and warm
(rules cached). Goal: no call per reading; at most one rules read per building per batch.

Then the notification latency over HTTP against the local stack (infra.local.local_stack, what
`make run` runs, on free 127.0.0.1 ports): LATENCY_SAMPLES rooms each get a rule with a webhook to
a receiver on 127.0.0.1, then one POST /readings that crosses it; the time from that POST to the
webhook's arrival (stream poll + evaluation + notify queue poll + POST).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

ROOMS = 10
READINGS_PER_ROOM = 10
T0 = 1_795_600_800_000  # 2026-11-25T10:00:00Z
MINUTE = 60_000


class _Queue:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send(self, bodies: Sequence[str]) -> None:
        self.bodies.extend(bodies)

    def send_later(self, body: str, delay_s: int) -> None:
        self.bodies.append(body)

    def ping(self) -> None:
        return None


LATENCY_SAMPLES = 8


def latency() -> dict[str, float]:
    """Reading-to-webhook latency over the local stack (median and max of LATENCY_SAMPLES)."""
    import statistics
    import threading
    import time
    import urllib.request
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from chalicelib.domain.timeutil import format_ms
    from infra.local import LOCALHOST, free_port, issue_key, local_stack

    arrived: dict[str, float] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            arrived.setdefault(body["alert"]["room"], time.monotonic())
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer((LOCALHOST, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://{LOCALHOST}:{server.server_address[1]}/hook"

    def call(api: str, key: str, method: str, path: str, body: Any) -> None:
        request = urllib.request.Request(
            api + path,
            data=json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()

    samples: list[float] = []
    try:
        with local_stack(free_port(), free_port(), "roomtemp", quiet=True) as (endpoint, api, _):
            key = issue_key(endpoint, "roomtemp", "bench", ["admin", "read", "ingest"], "bench")
            for i in range(LATENCY_SAMPLES):
                # A building each: a warm consumer reads a building's rules again only after
                # its cache's TTL (60 s), so a rule added to a building it has seen waits.
                building, room = f"lab{i}", f"r{i}"
                call(api, key, "POST", "/buildings", {"building": building})
                call(api, key, "POST", f"/buildings/{building}/rooms", {"room": room})
                rule: dict[str, Any] = {"metric": "temperature", "condition": "above"}
                rule.update(threshold=25, notify=[{"webhook": hook}])
                call(api, key, "POST", f"/buildings/{building}/rooms/{room}/alerts", rule)
                reading: dict[str, Any] = {"building": building, "room": room}
                reading.update(temperature=30.0, timestamp=format_ms(int(time.time() * 1000)))
                sent = time.monotonic()
                call(api, key, "POST", "/readings", reading)
                deadline = sent + 60
                while room not in arrived and time.monotonic() < deadline:
                    time.sleep(0.02)
                if room in arrived:
                    samples.append(arrived[room] - sent)
    finally:
        server.shutdown()
        server.server_close()
    return {
        "alerts_webhook_latency_samples": len(samples),
        "alerts_webhook_latency_median_s": round(statistics.median(samples), 2) if samples else -1,
        "alerts_webhook_latency_max_s": round(max(samples), 2) if samples else -1,
    }


def run() -> dict[str, float]:
    """The figures (calls per batch, then the latency) as {key: value}."""
    figures = calls_per_batch()
    figures.update(latency())
    return figures


def calls_per_batch() -> dict[str, float]:
    """The extra DynamoDB calls of alert evaluation per stream batch."""
    import boto3
    from moto import mock_aws

    from chalicelib.aws.alerts import DynamoAlertRepository
    from chalicelib.aws.dynamo import DynamoTable
    from chalicelib.aws.readings import DynamoReadingRepository
    from chalicelib.aws.registry import DynamoRegistryRepository
    from chalicelib.domain.models import Reading, TableChange
    from chalicelib.services import alerts, registry, rollups
    from infra.dynamodb_rules import apply as dynamodb_rules
    from infra.tables import create_table

    dynamodb_rules()  # what DynamoDB does that moto does not (PartiQL parameters, ...)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        name = create_table(client, f"bench-alerts-{uuid.uuid4().hex[:8]}")
        calls: Counter[str] = Counter()

        def count(event_name: str, **_: Any) -> None:
            calls[event_name.rsplit(".", 1)[-1]] += 1

        client.meta.events.register("before-call.dynamodb.*", count)
        table = DynamoTable(client, name)
        readings = DynamoReadingRepository(table, rollup_threads=1)
        reg = DynamoRegistryRepository(table)
        repo = DynamoAlertRepository(table)
        registry.create_building(reg, "t1", "hq", name=None, metadata=None, now_ms=T0)
        rooms = [f"r{i:02d}" for i in range(ROOMS)]
        for room in rooms:
            registry.create_room(reg, "t1", "hq", room, name=None, metadata=None, now_ms=T0)

        sequence = 0

        def batch(minute: int) -> list[TableChange]:
            nonlocal sequence
            written = []
            for room in rooms:
                for i in range(READINGS_PER_ROOM):
                    ts = T0 + minute * MINUTE + i * 1000
                    written.append(Reading("hq", room, "s1", ts, temperature=21.0, tenant="t1"))
            readings.put_readings(written)
            changes = []
            for reading in written:
                sequence += 1
                changes.append(TableChange(str(sequence), reading.ts_ms, reading))
            return changes

        def measure(changes: list[TableChange], deps: alerts.Alerting | None) -> tuple[int, int]:
            calls.clear()
            rollups.fold(readings, changes)
            folded = sum(calls.values())
            if deps is not None:
                alerts.evaluate(deps, changes)
            return folded, sum(calls.values()) - folded

        cache = alerts.RulesCache(60)
        deps = alerts.Alerting(repo, readings, _Queue(), cache)
        base, _ = measure(batch(0), None)
        _, no_rules = measure(
            batch(1), alerts.Alerting(repo, readings, _Queue(), alerts.RulesCache(60))
        )
        alerts.create_rule(
            repo,
            reg,
            "t1",
            "hq",
            None,
            {"metric": "temperature", "condition": "above", "threshold": 30, "minutes": 5},
            now_ms=T0,
            secret="s",
            allow_local=False,
        )
        calls.clear()
        _, cold = measure(batch(2), deps)
        cold_calls = dict(calls)
        _, warm = measure(batch(3), deps)
        warm_calls = dict(calls)
    records = ROOMS * READINGS_PER_ROOM
    print(json.dumps({"cold": cold_calls, "warm": warm_calls}))
    return {
        "alerts_batch_records": records,
        "alerts_fold_calls_per_batch": base,
        "alerts_extra_calls_no_rules_cold": no_rules,
        "alerts_extra_calls_with_rule_cold": cold,
        "alerts_extra_calls_with_rule_warm": warm,
        "alerts_extra_calls_per_reading_warm": round(warm / records, 3),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
