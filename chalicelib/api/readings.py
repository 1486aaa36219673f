"""Readings routes: POST /readings and the per-room reads, all scoped to the caller's tenant."""

from __future__ import annotations

import time
from typing import Any

from chalice.app import Blueprint, Request, Response

from chalicelib import observability
from chalicelib.api.http import enum_param, identifier, int_param, json_body, query, time_param
from chalicelib.api.responses import (
    IngestResult,
    QueuedResult,
    ReadingBatchIn,
    ReadingOut,
    ReadingsPage,
    WindowAverage,
)
from chalicelib.api.routedoc import CURSOR, QueryParam, enum_query, limit_param, time_query
from chalicelib.api.routing import route
from chalicelib.domain.cursors import decode_cursor, encode_cursor
from chalicelib.domain.errors import MalformedRequestError, ValidationError
from chalicelib.domain.inputs import ParsedBatch, ReadingIn, Rejection, parse_readings
from chalicelib.domain.models import Metric, Position
from chalicelib.domain.registry import Principal, Scope
from chalicelib.domain.timeutil import MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, now_ms
from chalicelib.domain.units import TemperatureUnit
from chalicelib.services import access, registry
from chalicelib.services import readings as services
from chalicelib.services.ingest import enqueue_readings
from chalicelib.settings import get_settings
from chalicelib.wiring import ingest_queue, known_rooms, repositories

readings = Blueprint(__name__)
DAY_MS = 86_400_000
ROOM = "/buildings/{building}/rooms/{room}"
UNIT = enum_query("unit", [u.value for u in TemperatureUnit], "C", "temperature unit of the answer")
READING_EXAMPLES = {
    "single": {"building": "hq", "room": "r101", "temperature": 21.5, "humidity": 40},
    "batch": {
        "readings": [
            {"building": "hq", "room": "r101", "sensor_id": "t1", "temperature": 21.5},
            {"building": "hq", "room": "r102", "timestamp": "2026-11-25T10:15:00Z", "co2": 650},
        ]
    },
}


@route(
    readings,
    "/readings",
    "POST",
    Scope.INGEST,
    body=ReadingIn | ReadingBatchIn,
    body_examples=READING_EXAMPLES,
    responses={
        201: (IngestResult, "Every reading was stored (or already was: `duplicates`)"),
        207: (IngestResult, "Some readings were stored, the others are listed in `rejected`"),
        202: (QueuedResult, "async=true: the valid readings were queued; the rest are rejected"),
    },
    query=[
        enum_query("async", ["true", "false"], "false", "true: validate and queue, store later")
    ],
    errors=(404, 413),
)
def post_readings(principal: Principal) -> Response:
    """Store one reading or a batch of up to 1000; 201, 207 (some rejected) or 422 (all).

    With ?async=true the valid readings are queued instead: 202 {"queued", "rejected"}.
    """
    request = readings.current_request
    started = time.perf_counter()
    now = now_ms()
    batch = parse_readings(json_body(request), now, get_settings().max_future_seconds * 1000)
    tenant = access.tenant_of(principal)
    if _async_requested(request):
        # Rooms are resolved (and checked against the tenant) now, so the queue holds only
        # readings that will be stored; the answer can name the ones that will not.
        registry.resolve_rooms(repositories().registry, tenant, batch, now, known_rooms())
        if batch.single and batch.rejected:
            return _single_rejection(batch.rejected[0])
        return _enqueue(batch, tenant=tenant)
    outcome = services.record_readings(
        repositories(), tenant, batch, now_ms=now, known=known_rooms()
    )
    observability.record_ingest("HTTP", outcome, time.perf_counter() - started)
    if batch.single and outcome.rejected:
        return _single_rejection(outcome.rejected[0])
    body = outcome.to_json()
    if not batch.readings:
        body = {"Code": "ValidationError", "Message": "every reading was rejected", **body}
        return Response(body=body, status_code=422)
    return Response(body=body, status_code=207 if outcome.rejected else 201)


def _single_rejection(rejection: Rejection) -> Response:
    """A single reading that was not stored: 404 for another tenant's building, else 422."""
    status = 404 if rejection.code == "NotFound" else 422
    return Response(body={"Code": rejection.code, "Message": rejection.message}, status_code=status)


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


def scoped_room(principal: Principal, building: str, room: str) -> tuple[str, str]:
    """Valid identifiers of a room of the caller's tenant (404 for anyone else's)."""
    building, room = identifier(building, "building"), identifier(room, "room")
    registry.check_room(
        repositories().registry, access.tenant_of(principal), building, room, known_rooms()
    )
    return building, room


@route(
    readings,
    ROOM + "/average",
    "GET",
    Scope.READ,
    query=[
        enum_query("metric", [m.value for m in Metric], "temperature", "what to average"),
        QueryParam(
            "minutes",
            {"type": "integer", "minimum": 1, "maximum": 1440, "default": 15},
            "window length",
        ),
        time_query("at", "end of the window (default: now)"),
        UNIT,
    ],
    responses={200: WindowAverage},
)
def get_average(principal: Principal, building: str, room: str) -> dict[str, Any]:
    """Average, min and max of a metric over (at - minutes, at]."""
    building, room = scoped_room(principal, building, room)
    params = query(readings.current_request)
    stats = services.window_average(
        repositories().readings,
        building,
        room,
        metric=enum_param(params, "metric", Metric, Metric.TEMPERATURE),
        minutes=int_param(params, "minutes", 15, 1, services.MAX_WINDOW_MINUTES),
        at_ms=time_param(params, "at", now_ms()),
        unit=enum_param(params, "unit", TemperatureUnit, TemperatureUnit.C),
    )
    return stats.to_json()


@route(readings, ROOM + "/latest", "GET", Scope.READ, query=[UNIT], responses={200: ReadingOut})
def get_latest(principal: Principal, building: str, room: str) -> dict[str, object]:
    """The room's most recent reading (404 if none)."""
    building, room = scoped_room(principal, building, room)
    unit = enum_param(query(readings.current_request), "unit", TemperatureUnit, TemperatureUnit.C)
    return services.latest_reading(repositories().readings, building, room).to_json(unit)


@route(
    readings,
    ROOM + "/readings",
    "GET",
    Scope.READ,
    query=[
        time_query("from", "first instant, inclusive (default: 24 h ago)"),
        time_query("to", "end, exclusive (default: now)"),
        limit_param(100, 1000),
        CURSOR,
        UNIT,
    ],
    responses={200: ReadingsPage},
)
def get_readings(principal: Principal, building: str, room: str) -> dict[str, Any]:
    """A page of the room's readings in [from, to), with an opaque cursor to the next page."""
    building, room = scoped_room(principal, building, room)
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
            if not MIN_TIMESTAMP_MS <= from_ms < to_ms <= MAX_TIMESTAMP_MS + 1:
                raise ValueError("range")
        except (KeyError, TypeError, ValueError, OverflowError):
            raise MalformedRequestError("cursor: not a cursor this API issued") from None
    unit = enum_param(params, "unit", TemperatureUnit, TemperatureUnit.C)
    page = services.list_readings(
        repositories().readings,
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
