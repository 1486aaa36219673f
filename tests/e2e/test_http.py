"""A user's view: readings in and averages out over real HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Http

pytestmark = pytest.mark.e2e

AT = "2025-06-01T12:00:00Z"
AT_S = 1_748_779_200


@pytest.fixture
def building() -> str:
    """A building no other test writes to (the session shares one table)."""
    return f"b-{uuid.uuid4().hex[:10]}"


def reading(building: str, **fields: Any) -> dict[str, Any]:
    return {"building": building, "room": "r1", "timestamp": AT, "temperature": 21.0, **fields}


def test_health_answers_ok(http: Http) -> None:
    status, body = http.get("/health")
    assert (status, body["status"]) == (200, "ok")
    assert set(body["checks"].values()) == {"ok"}


def test_post_then_average(http: Http, building: str) -> None:
    batch = [
        reading(building, sensor_id="a", temperature=20.0),
        reading(building, sensor_id="b", temperature=71.6, unit="F"),  # 22 °C
        reading(building, sensor_id="c", temperature=99.0, timestamp=AT_S - 900),  # outside
    ]
    assert http.post("/readings", {"readings": batch}) == (
        201,
        {"accepted": 3, "duplicates": 0, "rejected": []},
    )
    status, stats = http.get(f"/buildings/{building}/rooms/r1/average", {"at": AT})
    assert status == 200
    assert (stats["count"], stats["min"], stats["max"]) == (2, 20.0, pytest.approx(22.0))
    assert stats["average"] == pytest.approx(21.0)


def test_a_retried_post_is_not_counted_twice(http: Http, building: str) -> None:
    batch = {
        "readings": [reading(building, sensor_id=f"s{i}", temperature=20.0 + i) for i in range(3)]
    }
    assert http.post("/readings", batch)[1]["accepted"] == 3
    assert http.post("/readings", batch) == (201, {"accepted": 0, "duplicates": 3, "rejected": []})
    _, stats = http.get(f"/buildings/{building}/rooms/r1/average", {"at": AT})
    assert (stats["count"], stats["average"]) == (3, 21.0)


def test_walking_pages_over_http(http: Http, building: str) -> None:
    batch = [
        reading(building, sensor_id=f"s{i % 2}", timestamp=AT_S - 100 + i // 2) for i in range(9)
    ]
    assert http.post("/readings", {"readings": batch})[0] == 201
    seen = []
    params: dict[str, Any] = {"from": "2025-06-01T11:00:00Z", "to": AT, "limit": 2}
    while True:
        status, page = http.get(f"/buildings/{building}/rooms/r1/readings", params)
        assert status == 200
        seen += [(item["timestamp"], item["sensor_id"]) for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params = {"cursor": page["next_cursor"], "limit": 2}
    assert len(seen) == 9
    assert seen == sorted(set(seen))


def test_a_body_that_is_not_utf8_is_400(http: Http) -> None:
    status, body = http.post("/readings", body=b"\xff\xfe")
    assert status == 400
    assert set(body) == {"Code", "Message"}
