"""Item shapes: domain readings to DynamoDB attribute values and back (floats become N here)."""

from __future__ import annotations

from typing import Any

from chalicelib.aws import keys
from chalicelib.domain.models import Reading

Item = dict[str, dict[str, Any]]
_METRICS = ("temperature", "humidity", "co2")
# Stored to 1e-9: far below any sensor's resolution, and inside DynamoDB's number range.
_DIGITS = 9


def number(value: float) -> dict[str, str]:
    """A float as a DynamoDB number attribute (-0.0 is stored as 0)."""
    return {"N": repr(round(value, _DIGITS) + 0.0)}


def reading_key(reading: Reading) -> Item:
    """The primary key of a reading's item."""
    return {
        "pk": {"S": keys.room_pk(reading.tenant, reading.building, reading.room)},
        "sk": {"S": keys.reading_sk(reading.ts_ms, reading.sensor_id)},
    }


def reading_item(reading: Reading, expires_at: int | None = None) -> Item:
    """The whole item of a reading; `expires_at` (epoch seconds) feeds the table's TTL."""
    item = reading_key(reading)
    if reading.temperature is not None:
        item["temperature"] = number(reading.temperature)
    if reading.humidity is not None:
        item["humidity"] = number(reading.humidity)
    if reading.co2 is not None:
        item["co2"] = number(reading.co2)
    if expires_at is not None:
        item["expires_at"] = {"N": str(expires_at)}
    return item


def item_reading(item: Item) -> Reading:
    """The reading an item stores."""
    tenant, building, room = keys.parse_room_pk(item["pk"]["S"])
    ts_ms, sensor_id = keys.parse_reading_sk(item["sk"]["S"])
    values = {m: float(item[m]["N"]) for m in _METRICS if m in item}
    return Reading(
        building=building,
        room=room,
        sensor_id=sensor_id,
        ts_ms=ts_ms,
        temperature=values.get("temperature"),
        humidity=values.get("humidity"),
        co2=values.get("co2"),
        tenant=tenant,
    )


def key_tuple(key: Item) -> tuple[str, str]:
    """A primary key as a hashable pair."""
    return key["pk"]["S"], key["sk"]["S"]
