"""The emulator goes away mid-run: the API answers 503 quickly, then recovers with nothing lost.

Real HTTP: moto's server in this process (its data lives in the process, so it survives a
stop/start on the same port) and `chalice local` on free 127.0.0.1 ports.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from infra.local import (
    LOCALHOST,
    Emulator,
    aws_env,
    bootstrap,
    free_port,
    start_api,
    stop_process,
)

# `chalice local` applies the stage's ROOMTEMP_TABLE_NAME over the environment: use that name.
TABLE = "roomtemp"
# botocore gives up after 4 attempts with 2 s connect timeouts; anything near this is a hang.
HANG_S = 60


@dataclass
class Stack:
    emulator: Emulator
    base_url: str
    key: str

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=HANG_S) as response:
                status, headers, raw = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, headers, raw = error.code, dict(error.headers), error.read()
        return status, headers, json.loads(raw) if raw else None


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    from chalicelib import wiring
    from chalicelib.domain.access import Scope
    from infra.cli.keys import bootstrap_key

    emulator = Emulator(free_port()).start()
    process = None
    try:
        bootstrap(emulator.endpoint, TABLE)
        env = aws_env(emulator.endpoint, TABLE)
        monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint)
        monkeypatch.setenv("ROOMTEMP_TABLE_NAME", TABLE)
        wiring.reset()
        key = bootstrap_key("outage", [Scope.ADMIN, Scope.READ, Scope.INGEST], "outage")["key"]
        port = free_port()
        process = start_api(port, env, quiet=True)
        yield Stack(emulator, f"http://{LOCALHOST}:{port}", key)
    finally:
        if process is not None:
            stop_process(process)
        emulator.stop()
        wiring.reset()


def batch(start: int, count: int) -> dict[str, Any]:
    return {
        "readings": [
            {
                "building": "hq",
                "room": "lab",
                "sensor_id": "s1",
                "timestamp": 1_795_000_000 + i,
                "temperature": 20.0 + i % 7,
            }
            for i in range(start, start + count)
        ]
    }


@pytest.mark.e2e
def test_requests_answer_503_while_the_table_is_gone_and_work_after(stack: Stack) -> None:
    # Given: readings stored while the emulator runs
    status, _, body = stack.call("POST", "/readings", batch(0, 50))
    assert (status, body["accepted"]) == (201, 50)

    # When: the emulator stops
    stack.emulator.stop()
    answers = []
    for method, path, payload in [
        ("POST", "/readings", batch(50, 50)),
        ("GET", "/buildings/hq/rooms/lab/latest", None),
        ("GET", "/buildings/hq/rooms/lab/average?minutes=60", None),
        ("GET", "/health", None),
    ]:
        started = time.monotonic()
        answers.append((*stack.call(method, path, payload), time.monotonic() - started))

    # Then: every request answered 503 with Retry-After (urlopen would raise after HANG_S)
    for status, headers, body, _ in answers:
        assert status == 503, body
        assert body["Code"] == "ServiceUnavailable"
        assert int(headers["Retry-After"]) >= 1

    # When: it is back on the same port, and the client resends what failed
    stack.emulator.start()
    for _ in range(20):
        status, _, body = stack.call("POST", "/readings", batch(50, 50))
        if status != 503:
            break
        time.sleep(0.5)

    # Then: everything works again and nothing is lost or counted twice
    assert (status, body["accepted"] + body["duplicates"]) == (201, 50)
    assert stack.call("GET", "/health")[0] == 200
    status, _, page = stack.call(
        "GET",
        "/buildings/hq/rooms/lab/readings?limit=1000"
        "&from=2026-11-18T00:00:00Z&to=2026-11-19T00:00:00Z",
    )
    assert status == 200
    assert len(page["items"]) == 100
    print("\noutage answer times (s):", [round(a[3], 2) for a in answers])
