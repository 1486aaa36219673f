"""Every 422 rule of a reading, and how valid readings become domain readings."""

from __future__ import annotations

import math
from typing import Any

import pytest

from chalicelib.api.responses import RejectedReading
from chalicelib.domain.errors import (
    MalformedRequestError,
    PayloadTooLargeError,
    ValidationError,
)
from chalicelib.domain.inputs import check_identifier, parse_items, parse_one, parse_readings
from tests.factories import T0

NOW = T0
FUTURE = 300_000  # 5 minutes, the documented limit


def body(**fields: Any) -> dict[str, Any]:
    """A valid reading body with `fields` changed (a value of ... removes the field)."""
    base: dict[str, Any] = {
        "building": "hq",
        "room": "r101",
        "sensor_id": "s1",
        "timestamp": "2026-11-25T10:00:00Z",
        "temperature": 21.5,
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def parse(raw: Any) -> Any:
    return parse_one(raw, NOW, FUTURE)


def rejected(raw: Any) -> str:
    with pytest.raises(ValidationError) as info:
        parse(raw)
    return info.value.message


# -- identifiers ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a", "A-z_0.9:x", "b" * 64, "a:b", "..", "-"])
@pytest.mark.parametrize("field", ["building", "room", "sensor_id"])
def test_valid_identifiers_are_accepted(field: str, value: str) -> None:
    assert getattr(parse(body(**{field: value})), field) == value


@pytest.mark.parametrize(
    "value",
    ["a#b", "a/b", "a b", "", "b" * 65, "é", "a\nb", "a%20b", "#", "a\\b", "a?b", "a~b"],
)
@pytest.mark.parametrize("field", ["building", "room", "sensor_id"])
def test_invalid_identifiers_are_rejected(field: str, value: str) -> None:
    assert field in rejected(body(**{field: value}))


@pytest.mark.parametrize("value", [123, None, ["a"], True])
@pytest.mark.parametrize("field", ["building", "room"])
def test_identifiers_must_be_strings(field: str, value: Any) -> None:
    assert field in rejected(body(**{field: value}))


@pytest.mark.parametrize("field", ["building", "room"])
def test_building_and_room_are_required(field: str) -> None:
    assert field in rejected(body(**{field: ...}))


def test_sensor_id_defaults_to_default() -> None:
    assert parse(body(sensor_id=...)).sensor_id == "default"


@pytest.mark.parametrize("value", ["a#b", "a/b", "a b", "", "x" * 65, "a\x00"])
def test_check_identifier_rejects_what_the_model_rejects(value: str) -> None:
    with pytest.raises(ValidationError):
        check_identifier(value, "room")


def test_check_identifier_rejects_a_trailing_newline() -> None:
    # `$` in a regex matches before a final newline; fullmatch must not.
    with pytest.raises(ValidationError):
        check_identifier("room\n", "room")
    assert "room" in rejected(body(room="room\n"))


# -- timestamps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "expected_ms"),
    [
        ("2026-11-25T10:00:00Z", T0),
        ("2026-11-25T10:00:00+00:00", T0),
        ("2026-11-25T11:00:00+01:00", T0),
        ("2026-11-25T05:30:00-04:30", T0),
        ("2026-11-25T09:59:59.123Z", T0 - 877),
        ("2026-11-25T09:59:59.123999Z", T0 - 877),  # truncated to ms, never rounded up
        (1_795_600_800, T0),
        (1_795_600_799.5, T0 - 500),
        (1_795_600_799.1239, T0 - 877),  # truncated to ms
    ],
)
def test_timestamps_become_utc_milliseconds(timestamp: Any, expected_ms: int) -> None:
    assert parse(body(timestamp=timestamp)).ts_ms == expected_ms


def test_missing_timestamp_means_receive_time() -> None:
    assert parse(body(timestamp=...)).ts_ms == NOW
    assert parse(body(timestamp=None)).ts_ms == NOW


@pytest.mark.parametrize(
    "timestamp",
    [
        "2026-11-25T10:00:00",  # no offset
        "2026-11-25 10:00:00",  # no offset
        "2026-11-25",  # a date, no offset
        "yesterday",
        "",
        "1795600800",  # epoch as a string is not ISO 8601
        True,
        False,
        [1_795_600_800],
        {"s": 1},
        1_795_600_800_000,  # milliseconds sent as seconds: far future
        0,  # 1970: a clock reset
        -1.5,
    ],
)
def test_bad_timestamps_are_rejected(timestamp: Any) -> None:
    assert "timestamp" in rejected(body(timestamp=timestamp))


def test_up_to_five_minutes_in_the_future_is_accepted() -> None:
    assert parse(body(timestamp=(NOW + FUTURE) / 1000)).ts_ms == NOW + FUTURE


@pytest.mark.parametrize(
    "timestamp", [(NOW + FUTURE + 1) / 1000, "2026-11-25T10:05:00.001Z", "2027-01-01T00:00:00Z"]
)
def test_more_than_five_minutes_in_the_future_is_rejected(timestamp: Any) -> None:
    assert "future" in rejected(body(timestamp=timestamp))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("field", ["timestamp", "temperature", "humidity", "co2"])
def test_nan_and_infinity_are_rejected(field: str, value: float) -> None:
    assert field in rejected(body(**{field: value}))


# -- metrics and units ----------------------------------------------------------------------


def test_unknown_fields_are_rejected() -> None:
    assert "pressure" in rejected(body(pressure=1013))


def test_a_reading_without_any_metric_is_rejected() -> None:
    assert "at least one" in rejected(body(temperature=...))
    assert "at least one" in rejected(body(temperature=None, humidity=None, co2=None))


@pytest.mark.parametrize(
    "fields",
    [
        {"humidity": 40.0},
        {"co2": 420},
        {"temperature": 21, "humidity": 0, "co2": 0},
        {"humidity": 100, "co2": 100_000},
    ],
)
def test_any_one_metric_is_enough(fields: dict[str, Any]) -> None:
    parsed = parse(body(**{"temperature": None, **fields}))
    for name, value in fields.items():
        assert getattr(parsed, name) == value


@pytest.mark.parametrize(
    "fields",
    [
        {"humidity": -0.1},
        {"humidity": 100.1},
        {"co2": -1},
        {"co2": 100_000.5},
        {"temperature": "21"},
        {"temperature": True},
        {"humidity": "40"},
        {"co2": False},
        {"unit": "c"},
        {"unit": "R"},
        {"unit": None},
    ],
)
def test_out_of_range_or_mistyped_metrics_are_rejected(fields: dict[str, Any]) -> None:
    (name,) = fields
    assert name in rejected(body(**fields))


@pytest.mark.parametrize(
    ("temperature", "unit"),
    [(-273.16, "C"), (-459.68, "F"), (-0.01, "K"), (-1000, "C")],
)
def test_below_absolute_zero_is_rejected(temperature: float, unit: str) -> None:
    assert "absolute zero" in rejected(body(temperature=temperature, unit=unit))


@pytest.mark.parametrize(("temperature", "unit"), [(-273.15, "C"), (-459.67, "F"), (0, "K")])
def test_absolute_zero_itself_is_accepted(temperature: float, unit: str) -> None:
    assert parse(body(temperature=temperature, unit=unit)).temperature == pytest.approx(-273.15)


@pytest.mark.parametrize(
    ("temperature", "unit", "celsius"),
    [(21.5, "C", 21.5), (70.7, "F", 21.5), (294.65, "K", 21.5), (32, "F", 0.0), (-40, "F", -40.0)],
)
def test_temperatures_are_stored_in_celsius(temperature: float, unit: str, celsius: float) -> None:
    assert parse(body(temperature=temperature, unit=unit)).temperature == pytest.approx(celsius)


def test_unit_does_not_touch_humidity_or_co2() -> None:
    parsed = parse(body(temperature=None, unit="F", humidity=50, co2=800))
    assert (parsed.temperature, parsed.humidity, parsed.co2) == (None, 50, 800)


def test_a_reading_must_be_an_object() -> None:
    for raw in ([], "reading", 1, None):
        with pytest.raises(ValidationError):
            parse(raw)


# -- request bodies and batches -------------------------------------------------------------


def test_a_single_body_is_one_reading() -> None:
    batch = parse_readings(body(), NOW, FUTURE)
    assert batch.single
    assert len(batch.readings) == 1
    assert batch.rejected == []


def test_an_invalid_single_body_raises_422() -> None:
    with pytest.raises(ValidationError):
        parse_readings(body(room="a#b"), NOW, FUTURE)


@pytest.mark.parametrize(
    "raw",
    [
        [body()],
        "text",
        42,
        None,
        {"readings": body()},
        {"readings": "x"},
        {"readings": [body()], "extra": 1},
    ],
)
def test_wrong_shapes_are_malformed(raw: Any) -> None:
    with pytest.raises(MalformedRequestError):
        parse_readings(raw, NOW, FUTURE)


def test_an_empty_batch_is_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_readings({"readings": []}, NOW, FUTURE)


def test_a_batch_of_1000_is_accepted_and_1001_is_too_large() -> None:
    items = [body(timestamp=NOW / 1000 - i) for i in range(1001)]
    assert len(parse_readings({"readings": items[:1000]}, NOW, FUTURE).readings) == 1000
    with pytest.raises(PayloadTooLargeError):
        parse_readings({"readings": items}, NOW, FUTURE)


def test_a_partial_batch_keeps_valid_readings_and_lists_rejections_by_index() -> None:
    # Given a batch with bad readings at indices 1, 3 and 4 (each a different rule)
    items = [
        body(sensor_id="a"),
        body(room="a/b"),
        body(sensor_id="b"),
        "not an object",
        body(timestamp=(NOW + FUTURE + 1000) / 1000),
        body(sensor_id="c"),
    ]
    # When it is parsed
    batch = parse_items(items, NOW, FUTURE)
    # Then the valid ones are kept in order and each bad one is named by its index
    assert [r.sensor_id for r in batch.readings] == ["a", "b", "c"]
    assert [r.index for r in batch.rejected] == [1, 3, 4]
    assert {r.code for r in batch.rejected} == {"ValidationError"}
    assert all(r.message for r in batch.rejected)
    assert RejectedReading.of(batch.rejected[0]).model_dump() == {
        "index": 1,
        "Code": "ValidationError",
        "Message": batch.rejected[0].message,
    }


def test_an_epoch_too_large_for_a_float_is_rejected_not_a_crash() -> None:
    assert "timestamp" in rejected(body(timestamp=10**400))
    batch = parse_items([body(timestamp=10**400), body()], NOW, FUTURE)
    assert [r.index for r in batch.rejected] == [0]
