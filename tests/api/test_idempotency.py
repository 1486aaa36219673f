"""POST /readings with an Idempotency-Key: a retry gets the first answer, a retry of a failed
attempt is stored at the first attempt's time, and a key is never reused for other work."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.aws.readings import DynamoReadingRepository
from chalicelib.domain.errors import StorageUnavailableError
from chalicelib.domain.timeutil import now_ms
from tests.api.conftest import Api

ROOM = "/buildings/hq/rooms/r101"


def stored(api: Api) -> list[dict[str, Any]]:
    status, page = api.get(
        ROOM + "/readings", {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
    )
    assert status == 200
    return list(page["items"])


NO_TIMESTAMP = {
    "readings": [
        {"building": "hq", "room": "r101", "sensor_id": f"s{i}", "temperature": 20.0 + i}
        for i in range(3)
    ]
}


def test_without_a_key_a_timestamp_less_retry_is_stored_twice(api: Api) -> None:
    # (why the header exists: the receive time differs, so the retry is not a duplicate)
    api.post("/readings", NO_TIMESTAMP)
    api.post("/readings", NO_TIMESTAMP)
    assert len(stored(api)) == 6


def test_a_retry_with_the_same_key_gets_the_first_answer_and_stores_nothing(api: Api) -> None:
    key = {"Idempotency-Key": "device-7/msg-0001"}
    first = api.post("/readings", NO_TIMESTAMP, headers=key)
    assert first == (201, {"accepted": 3, "duplicates": 0, "rejected": []})
    assert "Idempotent-Replayed" not in {k.title() for k in api.headers}
    again = api.post("/readings", NO_TIMESTAMP, headers=key)
    assert again == first
    assert api.headers.get("Idempotent-Replayed") == "true"
    assert len(stored(api)) == 3


def test_a_retry_of_an_attempt_that_failed_is_stored_at_the_first_attempts_time(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the first attempt stores its readings, then fails (its answer is a 503)
    original = DynamoReadingRepository.put_readings
    calls = []

    def store_then_fail(self: Any, readings: Any) -> Any:
        calls.append(1)
        result = original(self, readings)
        if len(calls) == 1:
            raise StorageUnavailableError("the table is busy; retry shortly", 2)
        return result

    monkeypatch.setattr(DynamoReadingRepository, "put_readings", store_then_fail)
    key = {"Idempotency-Key": "device-7/msg-0002"}
    status, _ = api.post("/readings", NO_TIMESTAMP, headers=key)
    assert status == 503
    # When the device retries with the same key, later
    status, body = api.post("/readings", NO_TIMESTAMP, headers=key)
    # Then the readings are those of the first attempt's time: duplicates, not new readings
    assert (status, body["accepted"], body["duplicates"]) == (201, 0, 3)
    assert len(stored(api)) == 3


def test_the_same_key_with_another_body_is_refused(api: Api) -> None:
    key = {"Idempotency-Key": "k-1"}
    assert api.post("/readings", NO_TIMESTAMP, headers=key)[0] == 201
    other = {"building": "hq", "room": "r101", "temperature": 30.0}
    status, body = api.post("/readings", other, headers=key)
    assert (status, body["Code"]) == (422, "ValidationError")
    assert "Idempotency-Key" in body["Message"]


def test_a_key_whose_attempt_still_runs_is_busy(api: Api) -> None:
    from chalicelib import wiring
    from chalicelib.services import idempotency

    # Given an attempt that started a moment ago (another Lambda working on it)
    body = b'{"building": "hq", "room": "r101", "temperature": 21.0}'
    request = idempotency.fingerprint(body, "false")
    wiring.idempotency_store().begin("t1", "k-busy", request, now_ms(), idempotency.LEASE_MS)
    status, answer = api.post("/readings", body=body, headers={"Idempotency-Key": "k-busy"})
    assert (status, answer["Code"]) == (409, "Conflict")


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "with space"])
def test_a_malformed_key_is_422(api: Api, key: str) -> None:
    status, body = api.post("/readings", NO_TIMESTAMP, headers={"Idempotency-Key": key})
    assert (status, body["Code"]) == (422, "ValidationError")
