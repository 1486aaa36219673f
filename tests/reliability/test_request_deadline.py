"""An API request answers 503 + Retry-After before its deadline, however often storage fails.

The app's DynamoDB client fails 90 % of its attempts, the retry policy is told to try almost for
ever, and the clock only moves when the app sleeps (so the test takes no wall-clock time and
cannot flake): the request still ends within api_deadline_seconds, well inside API Gateway's 29 s,
with a 503 the client can retry; nothing half-written is lost or counted twice when it does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.aws import retry

from .conftest import Api
from .faults import FaultInjector

DEADLINE_S = 15.0
API_GATEWAY_LIMIT_S = 29.0


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def patient(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTime]:
    """A retry policy that would retry for ever, a 15 s deadline, and a fake clock."""
    from chalicelib import wiring

    monkeypatch.setenv("ROOMTEMP_API_RETRY_ATTEMPTS", "1000000")
    monkeypatch.setenv("ROOMTEMP_API_DEADLINE_SECONDS", str(DEADLINE_S))
    wiring.reset()
    assert wiring.get_settings().api_deadline_seconds == DEADLINE_S  # cached before the client
    clock = FakeTime()
    monkeypatch.setattr(retry, "time", clock)
    yield clock


def batch(rooms: int, per_room: int) -> dict[str, object]:
    return {
        "readings": [
            {
                "building": "hq",
                "room": f"r{r}",
                "sensor_id": "s1",
                "timestamp": 1_795_000_000 + i,
                "temperature": 20.0 + i % 5,
            }
            for r in range(rooms)
            for i in range(per_room)
        ]
    }


def test_a_request_under_constant_faults_answers_503_within_its_deadline(
    table: str, patient: FakeTime, api: Api
) -> None:
    from chalicelib import wiring

    body = batch(rooms=50, per_room=20)
    injector = FaultInjector(rate=0.9, unprocessed_rate=0.9, seed=3)
    injector.attach(wiring.aws_client("dynamodb"))
    try:
        started = patient.now
        status, headers, answer = api.request("POST", "/readings", key="ingest", body=body)
        spent = patient.now - started
    finally:
        injector.detach()

    assert (status, answer["Code"]) == (503, "ServiceUnavailable"), answer
    assert int(headers["Retry-After"]) >= 1
    assert spent <= DEADLINE_S < API_GATEWAY_LIMIT_S
    assert injector.total > 50  # it did retry, many times, before giving up

    # When the client retries once storage is well, everything is stored exactly once
    status, _, answer = api.request("POST", "/readings", key="ingest", body=body)
    assert status == 201, answer
    assert answer["accepted"] + answer["duplicates"] == 1000
    status, _, page = api.request(
        "GET",
        "/buildings/hq/rooms/r7/readings?from=2026-11-18T00:00:00Z&to=2026-11-19T00:00:00Z",
        key="admin",
    )
    assert status == 200
    assert len(page["items"]) == 20
