"""The HTTP contract of issue 2, route by route, through chalice.test.Client and moto."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from chalicelib import wiring
from chalicelib.domain.cursors import encode_cursor
from chalicelib.domain.errors import MalformedRequestError
from chalicelib.settings import get_settings
from tests.api.conftest import Api
from tests.conftest import TEST_CURSOR_SECRET

# A fixed instant in the past: readings at it are never "in the future".
AT = "2025-06-01T12:00:00Z"
AT_S = 1_748_779_200
ROOM = "/buildings/hq/rooms/r101"


def reading(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "building": "hq",
        "room": "r101",
        "sensor_id": "s1",
        "timestamp": AT,
        "temperature": 21.0,
    }
    base.update(fields)
    return base


def assert_error(body: Any, code: str, *extra: str) -> None:
    """Every error body has exactly Code and Message (plus documented extras)."""
    assert set(body) == {"Code", "Message", *extra}
    assert body["Code"] == code
    assert isinstance(body["Message"], str)
    assert body["Message"]


# -- POST /readings -------------------------------------------------------------------------


def test_a_single_reading_is_created(api: Api) -> None:
    assert api.post("/readings", json=reading()) == (
        201,
        {"accepted": 1, "duplicates": 0, "rejected": []},
    )


def test_a_retried_single_reading_is_a_duplicate_and_keeps_the_first_value(api: Api) -> None:
    api.post("/readings", json=reading(temperature=20.0))
    status, body = api.post("/readings", json=reading(temperature=30.0))
    assert (status, body) == (201, {"accepted": 0, "duplicates": 1, "rejected": []})
    _, stats = api.get(ROOM + "/average", {"at": AT})
    assert (stats["count"], stats["average"]) == (1, 20.0)


def test_a_valid_batch_is_created(api: Api) -> None:
    batch = [reading(sensor_id=f"s{i}") for i in range(30)]
    assert api.post("/readings", json={"readings": batch}) == (
        201,
        {"accepted": 30, "duplicates": 0, "rejected": []},
    )
    assert api.post("/readings", json={"readings": batch})[1]["duplicates"] == 30


def test_a_partly_invalid_batch_is_207_with_rejected_indices(api: Api) -> None:
    batch = [reading(), reading(room="a#b"), reading(sensor_id="s2"), reading(co2=-1)]
    status, body = api.post("/readings", json={"readings": batch})
    assert status == 207
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert [r["index"] for r in body["rejected"]] == [1, 3]
    for rejection in body["rejected"]:
        assert set(rejection) == {"index", "Code", "Message"}
        assert rejection["Code"] == "ValidationError"


def test_an_all_invalid_batch_is_422_with_every_index(api: Api) -> None:
    status, body = api.post("/readings", json={"readings": [reading(room=""), {"x": 1}]})
    assert status == 422
    assert_error(body, "ValidationError", "accepted", "duplicates", "rejected")
    assert [r["index"] for r in body["rejected"]] == [0, 1]
    assert body["accepted"] == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"room": "a/b"},
        {"building": "a b"},
        {"sensor_id": "x" * 65},
        {"timestamp": "2025-06-01T12:00:00"},
        {"timestamp": "2999-01-01T00:00:00Z"},
        {"temperature": -300},
        {"temperature": None},
        {"humidity": 101},
        {"co2": 100_001},
        {"unit": "X"},
        {"colour": "red"},
    ],
)
def test_an_invalid_single_reading_is_422(api: Api, bad: dict[str, Any]) -> None:
    status, body = api.post("/readings", json=reading(**bad))
    assert status == 422
    assert_error(body, "ValidationError")


def test_nan_in_the_body_is_422(api: Api) -> None:
    status, body = api.post("/readings", body=b'{"building":"hq","room":"r1","temperature":NaN}')
    assert status == 422
    assert_error(body, "ValidationError")


def test_more_than_1000_readings_is_413(api: Api) -> None:
    status, body = api.post("/readings", json={"readings": [reading()] * 1001})
    assert status == 413
    assert_error(body, "PayloadTooLarge")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"building": "hq",',  # malformed JSON
        b"\xff\xfe",  # not UTF-8
        b'\xff\xfe{\x00"\x00}\x00',  # UTF-16, not UTF-8
        b"[]",  # wrong shape
        b'"reading"',  # wrong shape
        b'{"readings": {"building": "hq"}}',  # wrong shape
        b'{"readings": [], "more": 1}',  # wrong shape
    ],
)
def test_unparseable_bodies_are_400(api: Api, raw: bytes) -> None:
    status, body = api.post("/readings", body=raw)
    assert status == 400
    assert_error(body, "BadRequest")


def test_fahrenheit_and_kelvin_readings_are_stored_in_celsius(api: Api) -> None:
    api.post("/readings", json=reading(sensor_id="f", temperature=68, unit="F"))
    api.post("/readings", json=reading(sensor_id="k", temperature=295.15, unit="K"))
    status, stats = api.get(ROOM + "/average", {"at": AT})
    assert status == 200
    assert stats["count"] == 2
    assert stats["average"] == pytest.approx(21.0)
    assert (stats["min"], stats["max"]) == (pytest.approx(20.0), pytest.approx(22.0))


# -- GET average ----------------------------------------------------------------------------


def test_the_average_over_the_default_15_minutes(api: Api) -> None:
    api.post(
        "/readings",
        json={
            "readings": [
                reading(sensor_id="a", temperature=20.0, timestamp=AT_S),
                reading(sensor_id="b", temperature=23.0, timestamp=AT_S - 899.999),
                reading(sensor_id="c", temperature=90.0, timestamp=AT_S - 900),  # excluded
                reading(sensor_id="d", temperature=90.0, timestamp=AT_S + 0.001),  # excluded
                reading(room="r102", temperature=90.0),  # another room
                reading(building="annex", temperature=90.0),  # another building
                reading(sensor_id="e", temperature=None, humidity=40.0),  # another metric
            ]
        },
    )
    status, stats = api.get(ROOM + "/average", {"at": "2025-06-01T14:00:00+02:00"})
    assert status == 200
    assert stats == {
        "building": "hq",
        "room": "r101",
        "metric": "temperature",
        "unit": "C",
        "window_start": "2025-06-01T11:45:00.000Z",
        "window_end": "2025-06-01T12:00:00.000Z",
        "count": 2,
        "average": 21.5,
        "min": 20.0,
        "max": 23.0,
    }


@pytest.mark.parametrize(("unit", "expected"), [("F", 70.7), ("K", 294.65), ("C", 21.5)])
def test_the_average_in_another_unit(api: Api, unit: str, expected: float) -> None:
    api.post("/readings", json=reading(temperature=21.5))
    status, stats = api.get(ROOM + "/average", {"at": AT, "unit": unit})
    assert status == 200
    assert stats["unit"] == unit
    for name in ("average", "min", "max"):
        assert stats[name] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("metric", "unit", "value"), [("humidity", "%", 45.5), ("co2", "ppm", 812)]
)
def test_the_average_of_humidity_and_co2(api: Api, metric: str, unit: str, value: float) -> None:
    api.post("/readings", json=reading(temperature=None, **{metric: value}))
    api.post("/readings", json=reading(sensor_id="t"))  # temperature only: not counted
    status, stats = api.get(ROOM + "/average", {"at": AT, "metric": metric})
    assert status == 200
    assert (stats["metric"], stats["unit"], stats["count"], stats["average"]) == (
        metric,
        unit,
        1,
        value,
    )


def test_an_empty_window_is_200_with_nulls(api: Api) -> None:
    status, stats = api.get(ROOM + "/average", {"at": AT, "minutes": 1440})
    assert status == 200
    assert (stats["count"], stats["average"], stats["min"], stats["max"]) == (0, None, None, None)
    assert stats["window_start"] == "2025-05-31T12:00:00.000Z"


@pytest.mark.parametrize(
    "params",
    [
        {"minutes": 0},
        {"minutes": 1441},
        {"minutes": "ten"},
        {"minutes": 1.5},
        {"at": "2025-06-01T12:00:00"},
        {"at": "noon"},
        {"metric": "pressure"},
        {"unit": "R"},
    ],
)
def test_bad_average_parameters_are_422(api: Api, params: dict[str, Any]) -> None:
    status, body = api.get(ROOM + "/average", params)
    assert status == 422
    assert_error(body, "ValidationError")


@pytest.mark.parametrize("minutes", [1, 1440])
def test_minutes_limits_are_accepted(api: Api, minutes: int) -> None:
    assert api.get(ROOM + "/average", {"at": AT, "minutes": minutes})[0] == 200


# -- path identifiers -----------------------------------------------------------------------


@pytest.mark.parametrize("route", ["average", "latest", "readings"])
@pytest.mark.parametrize(
    ("building", "room"),
    [("a%20b", "r1"), ("hq", "a%23b"), ("hq", "a%2Fb"), ("x" * 65, "r1"), ("hq", "r~1")],
)
def test_bad_identifiers_in_the_path_are_422(
    api: Api, route: str, building: str, room: str
) -> None:
    status, body = api.get(f"/buildings/{building}/rooms/{room}/{route}")
    assert status == 422
    assert_error(body, "ValidationError")


def test_identifiers_with_colons_dots_and_dashes_are_valid(api: Api) -> None:
    api.post("/readings", json=reading(building="a:b", room="c.d-e_f"))
    status, stats = api.get("/buildings/a:b/rooms/c.d-e_f/average", {"at": AT})
    assert (status, stats["count"]) == (200, 1)
    # The other split of the same characters is another room, one nobody wrote to.
    assert api.get("/buildings/a/rooms/b:c.d-e_f/average", {"at": AT})[0] == 404


# -- GET latest -----------------------------------------------------------------------------


def test_latest_is_404_for_a_room_without_readings(api: Api) -> None:
    status, body = api.get(ROOM + "/latest")
    assert status == 404
    assert_error(body, "NotFound")


def test_latest_is_the_newest_reading(api: Api) -> None:
    api.post("/readings", json=reading(timestamp=AT_S - 60, temperature=19.0))
    api.post("/readings", json=reading(timestamp=AT_S, temperature=20.0, humidity=40.0))
    status, body = api.get(ROOM + "/latest", {"unit": "F"})
    assert status == 200
    assert body == {
        "building": "hq",
        "room": "r101",
        "sensor_id": "s1",
        "timestamp": "2025-06-01T12:00:00.000Z",
        "temperature": pytest.approx(68.0),
        "unit": "F",
        "humidity": 40.0,
        "co2": None,
    }


# -- GET readings ---------------------------------------------------------------------------

RANGE = {"from": "2025-06-01T11:00:00Z", "to": "2025-06-01T12:00:00Z"}


def store_range(api: Api) -> list[tuple[str, str]]:
    """23 readings in RANGE (sensors sharing instants) and 2 just outside it."""
    batch = [
        reading(sensor_id=f"s{i % 3}", timestamp=AT_S - 3600 + (i // 3) * 60) for i in range(23)
    ]
    batch += [reading(timestamp=AT_S), reading(timestamp=AT_S - 3600.001)]
    assert api.post("/readings", json={"readings": batch})[1]["accepted"] == 25
    return sorted(
        (f"2025-06-01T{11 + (i // 3) // 60:02d}:{(i // 3) % 60:02d}:00.000Z", f"s{i % 3}")
        for i in range(23)
    )


@pytest.mark.parametrize("limit", [1, 4, 23, 1000])
def test_walking_every_page_returns_every_reading_once(api: Api, limit: int) -> None:
    expected = store_range(api)
    seen: list[tuple[str, str]] = []
    params: dict[str, Any] = {**RANGE, "limit": limit}
    while True:
        status, page = api.get(ROOM + "/readings", params)
        assert status == 200
        assert len(page["items"]) <= limit
        seen += [(item["timestamp"], item["sensor_id"]) for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params = {"cursor": page["next_cursor"], "limit": limit}
    assert seen == expected


def test_a_forged_cursor_is_400(api: Api) -> None:
    status, body = api.get(ROOM + "/readings", {**RANGE, "cursor": "eyJiIjoiaHEifQ"})
    assert status == 400
    assert_error(body, "BadRequest")


def first_cursor(api: Api) -> str:
    store_range(api)
    _, page = api.get(ROOM + "/readings", {**RANGE, "limit": 2})
    cursor: str = page["next_cursor"]
    return cursor


def test_a_cursor_of_another_room_is_400(api: Api) -> None:
    cursor = first_cursor(api)
    status, body = api.get("/buildings/hq/rooms/r102/readings", {"cursor": cursor})
    assert status == 400
    assert_error(body, "BadRequest")


def test_a_cursor_with_another_range_is_400(api: Api) -> None:
    cursor = first_cursor(api)
    status, body = api.get(ROOM + "/readings", {"cursor": cursor, "from": "2025-06-01T11:30:00Z"})
    assert status == 400
    assert_error(body, "BadRequest")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"from": "2025-06-01T11:00:00"},
        {"from": "2025-06-01T12:00:00Z", "to": "2025-06-01T11:00:00Z"},
    ],
)
def test_bad_range_parameters_are_422(api: Api, params: dict[str, Any]) -> None:
    status, body = api.get(ROOM + "/readings", params)
    assert status == 422
    assert_error(body, "ValidationError")


# -- GET /health ----------------------------------------------------------------------------


@pytest.fixture
def resources(api: Api, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The bucket and queues of the stage, created on moto and named in the settings."""
    names = {
        "ROOMTEMP_BUCKET_NAME": "data-health",
        "ROOMTEMP_INGEST_QUEUE_NAME": "ingest-health",
        "ROOMTEMP_REPORTS_QUEUE_NAME": "reports-health",
    }
    boto3.client("s3").create_bucket(Bucket=names["ROOMTEMP_BUCKET_NAME"])
    for variable, name in names.items():
        monkeypatch.setenv(variable, name)
        if "QUEUE" in variable:
            boto3.client("sqs").create_queue(QueueName=name)
    wiring.reset()
    get_settings()  # read now, from this environment (chalice.test.Client overlays the stage's)
    return names


def test_health_is_ok_when_every_resource_answers(api: Api, resources: dict[str, str]) -> None:
    checks = {"table": "ok", "bucket": "ok", "ingest_queue": "ok", "reports_queue": "ok"}
    assert api.get("/health") == (200, {"status": "ok", "checks": checks})


def test_health_names_a_missing_bucket_and_queue(api: Api, resources: dict[str, str]) -> None:
    # Given the bucket emptied and deleted, and the reports queue deleted
    boto3.client("s3").delete_bucket(Bucket=resources["ROOMTEMP_BUCKET_NAME"])
    sqs = boto3.client("sqs")
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName="reports-health")["QueueUrl"])
    # Then the health check answers 503 naming both, and not the table
    status, body = api.get("/health")
    assert status == 503
    assert_error(body, "ServiceUnavailable")
    assert "bucket" in body["Message"] and "reports_queue" in body["Message"]
    assert "table" not in body["Message"]


def test_health_is_503_when_the_table_is_missing(api: Api, dynamodb: Any, table_name: str) -> None:
    dynamodb.delete_table(TableName=table_name)
    status, body = api.get("/health")
    assert status == 503
    assert_error(body, "ServiceUnavailable")
    assert int(api.headers["Retry-After"]) > 0
    status, body = api.post("/readings", json=reading())
    assert status == 503
    assert_error(body, "ServiceUnavailable")


def test_an_epoch_timestamp_too_large_for_a_float_is_422(api: Api) -> None:
    raw = b'{"building": "hq", "room": "r1", "temperature": 20, "timestamp": 1' + b"0" * 400 + b"}"
    status, body = api.post("/readings", body=raw)
    assert status == 422
    assert_error(body, "ValidationError")


def test_a_body_nested_too_deeply_is_400(api: Api) -> None:
    status, body = api.post("/readings", body=b"[" * 100_000)
    assert status == 400
    assert_error(body, "BadRequest")


@pytest.mark.parametrize(
    "change",
    [
        {"ts": float("inf")},
        {"ts": float("nan")},
        {"t": 10**30},
        {"f": -(10**30)},
        {"f": 1_748_779_200_000},  # from == to
        {"f": "x"},
        {"s": None, "ts": None},
        {"b": "hq", "r": "r102"},
    ],
)
def test_a_well_formed_but_forged_cursor_is_400(api: Api, change: dict[str, Any]) -> None:
    # Even signed with the deployment's own secret (leaked), a cursor only moves within the
    # request: every field is checked before the table sees a position.
    state = {"b": "hq", "r": "r101", "f": 1_748_775_600_000, "t": 1_748_779_200_000}
    state |= {"ts": 1_748_775_600_001, "s": "s1", **change}
    cursor = encode_cursor(state, TEST_CURSOR_SECRET.encode())
    status, body = api.get(ROOM + "/readings", {"cursor": cursor})
    assert status == 400
    assert_error(body, "BadRequest")


def test_cursors_are_signed_with_the_secret_the_deployment_keeps(
    moto_dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from chalicelib import wiring
    from chalicelib.domain.cursors import decode_cursor

    # Given the deployment's secret in Secrets Manager (no secret given outright)
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.create_secret(Name="roomtemp/test/cursor", SecretString="kept in the secret store")
    monkeypatch.delenv("ROOMTEMP_CURSOR_SECRET")
    monkeypatch.setenv("ROOMTEMP_CURSOR_SECRET_NAME", "roomtemp/test/cursor")
    wiring.reset()
    # Then cursors are signed with it, and one signed otherwise is not honoured
    assert wiring.cursor_secret() == b"kept in the secret store"
    cursor = encode_cursor({"k": "rooms", "a": "r1"}, b"kept in the secret store")
    assert decode_cursor(cursor, wiring.cursor_secret()) == {"k": "rooms", "a": "r1"}
    with pytest.raises(MalformedRequestError):
        decode_cursor(cursor, TEST_CURSOR_SECRET.encode())
