"""Readings routes: POST /readings and the per-room reads."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint, Request, Response

from chalicelib import services
from chalicelib.api.http import (
    enum_param,
    identifier,
    int_param,
    json_body,
    query,
    time_param,
    translate_errors,
)
from chalicelib.domain.cursors import decode_cursor, encode_cursor
from chalicelib.domain.errors import MalformedRequestError, ValidationError
from chalicelib.domain.inputs import ParsedBatch, parse_readings
from chalicelib.domain.models import Metric, Position
from chalicelib.domain.timeutil import now_ms
from chalicelib.domain.units import TemperatureUnit
from chalicelib.ingest.pipeline import enqueue_readings
from chalicelib.settings import get_settings
from chalicelib.wiring import ingest_queue, reading_repository

readings = Blueprint(__name__)
DAY_MS = 86_400_000
ROOM = "/buildings/{building}/rooms/{room}"


@readings.route("/readings", methods=["POST"])
@translate_errors
def post_readings() -> Response:
    """Store one reading or a batch of up to 1000; 201, 207 (some rejected) or 422 (all).

    With ?async=true the valid readings are queued instead: 202 {"queued", "rejected"}.
    """
    request = readings.current_request
    max_future_ms = get_settings().max_future_seconds * 1000
    batch = parse_readings(json_body(request), now_ms(), max_future_ms)
    if _async_requested(request):
        return _enqueue(batch, tenant="local")  # tenant: from the caller's key (issue 3)
    outcome = services.record_readings(reading_repository(), batch)
    body = outcome.to_json()
    if not batch.readings:
        body = {"Code": "ValidationError", "Message": "every reading was rejected", **body}
        return Response(body=body, status_code=422)
    return Response(body=body, status_code=207 if outcome.rejected else 201)


def _async_requested(request: Request) -> bool:
    flag = query(request).get("async", "false")
    if flag not in ("true", "false"):
        raise ValidationError("async: must be true or false")
    return flag == "true"


def _enqueue(batch: ParsedBatch, *, tenant: str) -> Response:
    """?async=true: queue the valid readings for the ingest handler; 202 with the count."""
    rejected = [r.to_json() for r in batch.rejected]
    if not batch.readings:
        body = {"Code": "ValidationError", "Message": "every reading was rejected"}
        return Response(body={**body, "queued": 0, "rejected": rejected}, status_code=422)
    queued = enqueue_readings(ingest_queue(), batch.readings, tenant)
    return Response(body={"queued": queued, "rejected": rejected}, status_code=202)


def _room(building: str, room: str) -> tuple[str, str]:
    return identifier(building, "building"), identifier(room, "room")


@readings.route(ROOM + "/average", methods=["GET"])
@translate_errors
def get_average(building: str, room: str) -> dict[str, Any]:
    """Average, min and max of a metric over (at - minutes, at]."""
    building, room = _room(building, room)
    params = query(readings.current_request)
    stats = services.window_average(
        reading_repository(),
        building,
        room,
        metric=enum_param(params, "metric", Metric, Metric.TEMPERATURE),
        minutes=int_param(params, "minutes", 15, 1, services.MAX_WINDOW_MINUTES),
        at_ms=time_param(params, "at", now_ms()),
        unit=enum_param(params, "unit", TemperatureUnit, TemperatureUnit.C),
    )
    return stats.to_json()


@readings.route(ROOM + "/latest", methods=["GET"])
@translate_errors
def get_latest(building: str, room: str) -> dict[str, object]:
    """The room's most recent reading (404 if none)."""
    building, room = _room(building, room)
    unit = enum_param(query(readings.current_request), "unit", TemperatureUnit, TemperatureUnit.C)
    return services.latest_reading(reading_repository(), building, room).to_json(unit)


@readings.route(ROOM + "/readings", methods=["GET"])
@translate_errors
def get_readings(building: str, room: str) -> dict[str, Any]:
    """A page of the room's readings in [from, to), with an opaque cursor to the next page."""
    building, room = _room(building, room)
    params = query(readings.current_request)
    now = now_ms()
    from_ms = time_param(params, "from", now - DAY_MS)
    to_ms = time_param(params, "to", now + 1)
    after = None
    if "cursor" in params:
        # The cursor pins the range of its first page, so "now" moving on cannot skip readings.
        state = decode_cursor(params["cursor"])
        try:
            if (state["b"], state["r"]) != (building, room):
                raise MalformedRequestError("cursor: belongs to another room")
            explicit = ("from" in params and state["f"] != from_ms) or (
                "to" in params and state["t"] != to_ms
            )
            if explicit:
                raise MalformedRequestError("cursor: belongs to another range")
            from_ms, to_ms = int(state["f"]), int(state["t"])
            after = Position(ts_ms=int(state["ts"]), sensor_id=str(state["s"]))
        except (KeyError, TypeError, ValueError):
            raise MalformedRequestError("cursor: not a cursor this API issued") from None
    unit = enum_param(params, "unit", TemperatureUnit, TemperatureUnit.C)
    page = services.list_readings(
        reading_repository(),
        building,
        room,
        from_ms=from_ms,
        to_ms=to_ms,
        limit=int_param(params, "limit", 100, 1, services.MAX_PAGE),
        after=after,
    )
    next_cursor = None
    if page.next_after is not None:
        next_cursor = encode_cursor(
            {
                "b": building,
                "r": room,
                "f": from_ms,
                "t": to_ms,
                "ts": page.next_after.ts_ms,
                "s": page.next_after.sensor_id,
            }
        )
    return {"items": [r.to_json(unit) for r in page.items], "next_cursor": next_cursor}
