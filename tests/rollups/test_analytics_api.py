"""HTTP: series, statistics, building averages and reports through chalice.test.Client + moto."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
from chalice.test import Client

from chalicelib import wiring
from chalicelib.domain.access import Scope
from chalicelib.services import registry
from infra.cli.keys import bootstrap_key
from tests.streams import drain_table

BASE = "2026-11-25T10:00:00Z"


class AuthorizedHttp:
    """chalice.test.Client's http, sending tenant t1's admin + read + ingest key every time."""

    def __init__(self, http: Any, key: str) -> None:
        self._http, self._auth = http, {"Authorization": f"Bearer {key}"}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self._http.get(path, headers={**self._auth, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self._http.post(path, headers={**self._auth, **kwargs.pop("headers", {})}, **kwargs)


@pytest.fixture
def client(aws: dict[str, Any]) -> Iterator[Client]:
    from app import app

    wiring.get_settings()  # read now: the test client patches the config's env vars per call
    key = bootstrap_key("t1", [Scope.ADMIN, Scope.READ, Scope.INGEST], "rollup tests")["key"]
    # The building and rooms the tests read are registered, as readings would register them.
    repos = wiring.repositories()
    registry.create_building(repos.registry, "t1", "b1", name=None, metadata=None, now_ms=0)
    for room in ("r1", "r2"):
        registry.create_room(repos.registry, "t1", "b1", room, name=None, metadata=None, now_ms=0)
    with Client(app) as test_client:
        test_client._http_client = AuthorizedHttp(test_client.http, key)  # type: ignore[attr-defined]
        yield test_client


def post(client: Client, path: str, body: Any, **headers: str) -> Any:
    return client.http.post(
        path, body=json.dumps(body), headers={"Content-Type": "application/json", **headers}
    )


def seed(client: Client) -> None:
    readings = [
        {
            "building": "b1",
            "room": "r1",
            "timestamp": f"2026-11-25T10:{m:02d}:{s:02d}Z",
            "temperature": 18.0 + m,
        }
        for m in range(0, 10)
        for s in (0, 30)
    ] + [{"building": "b1", "room": "r2", "timestamp": "2026-11-25T10:05:00Z", "temperature": 30.0}]
    response = post(client, "/readings", {"readings": readings})
    assert response.status_code == 201, response.json_body
    # The table's stream brings them to the rollups (the "rollups" handler, as in Lambda)
    assert drain_table(wiring.get_settings().table_name).records >= len(readings)


def test_series_lists_every_bucket_including_empty_ones(client: Client) -> None:
    seed(client)
    response = client.http.get(
        "/buildings/b1/rooms/r1/series?from=2026-11-25T10:00:00Z&to=2026-11-25T10:20:00Z"
        "&interval=5m&unit=F"
    )
    assert response.status_code == 200
    buckets = response.json_body["buckets"]
    assert [b["start"] for b in buckets] == [
        "2026-11-25T10:00:00.000Z",
        "2026-11-25T10:05:00.000Z",
        "2026-11-25T10:10:00.000Z",
        "2026-11-25T10:15:00.000Z",
    ]
    assert [b["count"] for b in buckets] == [10, 10, 0, 0]
    assert buckets[0]["average"] == pytest.approx(20.0 * 9 / 5 + 32)
    assert buckets[3] == {
        "start": "2026-11-25T10:15:00.000Z",
        "count": 0,
        "average": None,
        "min": None,
        "max": None,
    }
    assert response.json_body["unit"] == "F"


def test_too_many_buckets_is_422(client: Client) -> None:
    response = client.http.get(
        "/buildings/b1/rooms/r1/series?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z"
        "&interval=1m"
    )
    assert response.status_code == 422
    assert response.json_body["Code"] == "ValidationError"


@pytest.mark.parametrize("query", ["interval=2m", "from=yesterday", "from=2026-11-25T13:00:00Z"])
def test_bad_series_parameters_are_422(client: Client, query: str) -> None:
    response = client.http.get(f"/buildings/b1/rooms/r1/series?{query}&to=2026-11-25T12:00:00Z")
    assert response.status_code == 422


def test_room_stats_report_time_outside_the_band(client: Client) -> None:
    seed(client)
    response = client.http.get(
        "/buildings/b1/rooms/r1/stats?from=2026-11-25T10:00:00Z&to=2026-11-25T11:00:00Z"
        "&low=19.5&high=25"
    )
    body = response.json_body
    assert response.status_code == 200
    assert body["count"] == 20
    assert body["mean"] == pytest.approx(22.5)
    assert (body["min"], body["max"]) == (18.0, 27.0)
    # minute means 18..27: 18, 19 below 19.5; 26, 27 above 25
    assert (body["minutes_with_data"], body["minutes_below"], body["minutes_above"]) == (10, 2, 2)


def test_band_with_low_above_high_is_422(client: Client) -> None:
    response = client.http.get("/buildings/b1/rooms/r1/stats?low=26&high=19")
    assert response.status_code == 422


def test_building_average_and_stats_cover_every_room(client: Client) -> None:
    seed(client)
    average = client.http.get("/buildings/b1/average?minutes=15&at=2026-11-25T10:10:00Z").json_body
    assert average["count"] == 21
    assert average["average_of_rooms"] == pytest.approx((22.5 + 30.0) / 2)
    assert average["average_by_readings"] == pytest.approx((22.5 * 20 + 30.0) / 21)
    stats = client.http.get(
        "/buildings/b1/stats?from=2026-11-25T10:00:00Z&to=2026-11-25T11:00:00Z&high=25"
    ).json_body
    assert [r["room"] for r in stats["rooms"]] == ["r1", "r2"]
    assert stats["building_stats"]["count"] == 21
    assert stats["building_stats"]["room_minutes_above"] == 3


def run_worker(client: Client, aws: dict[str, Any]) -> int:
    """Hand every queued message to the SQS handler, as Lambda would; return how many."""
    messages = aws["sqs"].receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10)
    bodies = [m["Body"] for m in messages.get("Messages", [])]
    if bodies:
        event = client.events.generate_sqs_event(
            message_bodies=bodies, queue_name="roomtemp-reports"
        )
        client.lambda_.invoke("compute_report", event)
    return len(bodies)


def test_a_report_is_computed_by_the_queue_worker_with_a_csv_copy(
    client: Client, aws: dict[str, Any]
) -> None:
    seed(client)
    response = post(
        client,
        "/reports",
        {
            "building": "b1",
            "from": "2026-11-24T00:00:00Z",
            "to": "2026-11-26T00:00:00Z",
            "metrics": ["temperature"],
            "low": 19.5,
            "high": 25,
        },
    )
    assert response.status_code == 202
    report_id = response.json_body["id"]
    assert response.json_body["status"] == "pending"
    assert client.http.get(f"/reports/{report_id}").json_body["status"] == "pending"

    assert run_worker(client, aws) == 1

    body = client.http.get(f"/reports/{report_id}").json_body
    assert body["status"] == "completed"
    assert body["duration_ms"] is not None and body["error"] is None
    result = body["result"]
    assert [r["room"] for r in result["rooms"]] == ["r1", "r2"]
    r1 = result["rooms"][0]["metrics"]["temperature"]
    assert (r1["count"], r1["minutes_below"], r1["minutes_above"]) == (20, 2, 2)
    assert [d["count"] for d in r1["daily"]] == [0, 20]
    assert result["building_stats"]["temperature"]["count"] == 21
    # the CSV copy in S3, and a presigned link to it
    url = urlparse(body["csv_url"])
    assert url.path.endswith(f"/reports/{report_id}.csv") and "Signature" in url.query
    stored = aws["s3"].get_object(Bucket="roomtemp-data", Key=f"reports/{report_id}.csv")
    rows = list(csv.DictReader(io.StringIO(stored["Body"].read().decode())))
    building_row = next(r for r in rows if r["scope"] == "building")
    assert building_row["count"] == "21"


def test_a_redelivered_report_message_changes_nothing(client: Client, aws: dict[str, Any]) -> None:
    seed(client)
    report_id = post(
        client, "/reports", {"building": "b1", "from": BASE, "to": "2026-11-25T11:00:00Z"}
    ).json_body["id"]
    event = client.events.generate_sqs_event(
        message_bodies=[json.dumps({"id": report_id})], queue_name="roomtemp-reports"
    )
    client.lambda_.invoke("compute_report", event)
    first = client.http.get(f"/reports/{report_id}").json_body
    # readings arrive after completion, then the message is delivered again
    post(
        client, "/readings", {"building": "b1", "room": "r1", "timestamp": BASE, "temperature": 99}
    )
    client.lambda_.invoke("compute_report", event)
    again = client.http.get(f"/reports/{report_id}").json_body
    assert again["result"] == first["result"]
    assert again["finished_at"] == first["finished_at"]


def test_an_empty_period_completes_with_zero_counts(client: Client, aws: dict[str, Any]) -> None:
    # (b1/r2 is registered but holds no readings; a building of nobody's is 404, tested below)
    report_id = post(
        client,
        "/reports",
        {"building": "b1", "rooms": ["r2"], "from": BASE, "to": "2026-11-26T10:00:00Z"},
    ).json_body["id"]
    run_worker(client, aws)
    body = client.http.get(f"/reports/{report_id}").json_body
    assert body["status"] == "completed"
    assert body["result"]["building_stats"]["temperature"]["count"] == 0
    assert body["result"]["rooms"][0]["metrics"]["co2"]["count"] == 0


def test_a_report_on_another_tenants_or_no_building_is_404(client: Client) -> None:
    body = {"building": "nobody", "from": BASE, "to": "2026-11-26T10:00:00Z"}
    response = post(client, "/reports", body)
    assert response.status_code == 404
    assert set(response.json_body) == {"Code", "Message"}


def test_the_same_idempotency_key_returns_the_same_report(
    client: Client, aws: dict[str, Any]
) -> None:
    body = {"building": "b1", "from": BASE, "to": "2026-11-25T11:00:00Z"}
    first = post(client, "/reports", body, **{"Idempotency-Key": "k-1"}).json_body
    second = post(client, "/reports", body, **{"Idempotency-Key": "k-1"}).json_body
    assert first["id"] == second["id"]
    assert run_worker(client, aws) == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"building": "b1", "from": BASE}, 422),
        ({"building": "b 1", "from": BASE, "to": "2026-11-25T11:00:00Z"}, 422),
        ({"building": "b1", "from": BASE, "to": "2026-11-25T11:00:00Z", "metrics": ["x"]}, 422),
        ({"building": "b1", "from": BASE, "to": BASE}, 422),
        ({"building": "b1", "from": BASE, "to": "2027-11-25T11:00:00Z"}, 422),
        (
            {"building": "b1", "from": BASE, "to": "2026-11-25T11:00:00Z", "low": 30, "high": 20},
            422,
        ),
        (["not", "an", "object"], 400),
    ],
)
def test_bad_report_requests_are_rejected(client: Client, body: Any, status: int) -> None:
    response = post(client, "/reports", body)
    assert response.status_code == status
    assert set(response.json_body) >= {"Code", "Message"}


def test_an_unknown_report_is_404(client: Client) -> None:
    assert client.http.get("/reports/nope").status_code == 404


def test_rollup_answers_say_how_fresh_they_are_and_match_the_raw_once_consumed(
    client: Client,
) -> None:
    # Given a reading just stored, not yet through the table's stream
    body = {"building": "b1", "room": "r1", "timestamp": BASE, "temperature": 21.0}
    assert post(client, "/readings", body).status_code == 201
    period = "from=2026-11-25T10:00:00Z&to=2026-11-25T11:00:00Z"
    before = client.http.get(f"/buildings/b1/rooms/r1/stats?{period}").json_body
    # Then the statistics do not count it yet, and say they hold nothing so far
    assert (before["count"], before["as_of"]) == (0, None)
    # But the headline average (raw readings) counts it at once
    average = client.http.get("/buildings/b1/rooms/r1/average?at=2026-11-25T10:05:00Z")
    assert average.json_body["count"] == 1
    # When the stream is consumed
    drain_table(wiring.get_settings().table_name)
    after = client.http.get(f"/buildings/b1/rooms/r1/stats?{period}").json_body
    series = client.http.get(f"/buildings/b1/rooms/r1/series?{period}&interval=1h").json_body
    building = client.http.get(f"/buildings/b1/stats?{period}").json_body
    # Then they equal the raw computation and say until when they hold every reading
    assert (after["count"], after["mean"]) == (1, 21.0)
    assert series["buckets"][0]["count"] == 1
    assert after["as_of"] is not None and after["as_of"] == series["as_of"]
    # (a building's as_of is its least fresh room's: r2 has no rollups yet)
    assert building["as_of"] is None
    assert {r["room"]: r["as_of"] for r in building["rooms"]}["r1"] == after["as_of"]


def test_a_large_report_is_answered_by_its_summary_and_links_not_inline(
    client: Client, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given results larger than what is answered inline (a 92-day report of ~160 rooms passes
    # Lambda's 6 MB; here the limit is made small instead)
    seed(client)
    monkeypatch.setenv("ROOMTEMP_REPORT_INLINE_BYTES", "1000")
    from chalicelib.settings import reset_settings

    reset_settings()
    assert wiring.get_settings().report_inline_bytes == 1000
    body = {"building": "b1", "from": "2026-11-24T00:00:00Z", "to": "2026-11-26T00:00:00Z"}
    report_id = post(client, "/reports", body).json_body["id"]
    assert run_worker(client, aws) == 1
    # When it is read
    answer = client.http.get(f"/reports/{report_id}").json_body
    # Then its summary is inline, the result only by link, and the link holds the whole result
    assert answer["status"] == "completed" and answer["result"] is None
    assert answer["summary"]["rooms"] == 2
    assert answer["summary"]["building_stats"]["temperature"]["count"] == 21
    link = urlparse(answer["result_url"])
    assert "Signature" in link.query
    key = link.path.removeprefix("/").removeprefix("roomtemp-data/")
    result = json.loads(aws["s3"].get_object(Bucket="roomtemp-data", Key=key)["Body"].read())
    assert [r["room"] for r in result["rooms"]] == ["r1", "r2"]
    assert urlparse(answer["csv_url"]).path.endswith(f"/reports/{report_id}.csv")
