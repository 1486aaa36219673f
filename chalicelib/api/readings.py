"""Readings routes: POST /readings and the per-room reads, all scoped to the caller's tenant."""

from __future__ import annotations

import time

from chalice.app import Blueprint

from chalicelib import observability, wiring
from chalicelib.api.bodies import ReadingBatchIn
from chalicelib.api.http import json_body, parse_query
from chalicelib.api.queries import AverageQuery, PostReadingsQuery, ReadingsQuery, UnitQuery
from chalicelib.api.responses import (
    IngestResult,
    NothingQueued,
    NothingStored,
    QueuedResult,
    ReadingOut,
    ReadingsPage,
    WindowAverage,
    rejected,
)
from chalicelib.api.routing import Reply, idempotent, route
from chalicelib.api.scope import owner, scoped_room
from chalicelib.domain.access import Principal, Scope
from chalicelib.domain.cursors import decode_cursor, encode_cursor
from chalicelib.domain.errors import MalformedRequestError
from chalicelib.domain.inputs import ReadingIn, is_identifier, parse_readings
from chalicelib.domain.models import Position
from chalicelib.domain.timeutil import MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, now_ms
from chalicelib.services import idempotency, ingest, readings
from chalicelib.settings import get_settings

readings_api = Blueprint(__name__)
DAY_MS = 86_400_000
ROOM = "/buildings/{building}/rooms/{room}"
READING_EXAMPLES = {
    "single": {"building": "hq", "room": "r101", "temperature": 21.5, "humidity": 40},
    "batch": {
        "readings": [
            {"building": "hq", "room": "r101", "sensor_id": "t1", "temperature": 21.5},
            {"building": "hq", "room": "r102", "timestamp": "2026-11-25T10:15:00Z", "co2": 650},
        ]
    },
}
EVERY_READING_REJECTED = "every reading was rejected"


@route(
    readings_api,
    "/readings",
    "POST",
    Scope.INGEST,
    body=ReadingIn | ReadingBatchIn,
    body_examples=READING_EXAMPLES,
    query=PostReadingsQuery,
    responses={
        201: (IngestResult, "Every reading was stored (or already was: `duplicates`)"),
        207: (IngestResult, "Some readings were stored, the others are listed in `rejected`"),
        202: (QueuedResult, "async=true: the valid readings were queued; the rest are rejected"),
    },
    errors=(404, 413),
)
def post_readings(principal: Principal) -> Reply:
    """Store one reading or a batch of up to 1000; 201, 207 (some rejected) or 422 (all).

    With ?async=true the valid readings are queued instead: 202 {"queued", "rejected"}.
    With an `Idempotency-Key` header, a retry gets the first answer back
    (`Idempotent-Replayed: true`), and a retry of an attempt that failed is stored at the first
    attempt's time: readings sent without a timestamp are not stored twice.
    """
    request = readings_api.current_request
    asked = parse_query(PostReadingsQuery, request)
    key = request.headers.get("idempotency-key")
    if key is None:
        return _post(principal, asked, now_ms())
    raw = request.raw_body or b""
    return idempotent(
        owner(principal),
        key,
        idempotency.fingerprint(raw, asked.async_),
        lambda now: _post(principal, asked, now),
    )


def _post(principal: Principal, asked: PostReadingsQuery, now: int) -> Reply:
    request = readings_api.current_request
    started = time.perf_counter()
    batch = parse_readings(json_body(request), now, get_settings().max_future_seconds * 1000)
    tenant = owner(principal)
    repos = wiring.repositories()
    if asked.async_ == "true":
        # Rooms are resolved (and checked against the tenant) now, so the queue holds only
        # readings that will be stored; the answer can name the ones that will not.
        readings.place_readings(
            repos.registry, tenant, batch, now_ms=now, known=wiring.known_rooms(), caller=principal
        )
        if batch.single and batch.rejected:
            batch.rejected[0].raise_it()
        if not batch.readings:
            return Reply(
                422,
                NothingQueued(
                    Code="ValidationError",
                    Message=EVERY_READING_REJECTED,
                    queued=0,
                    rejected=rejected(batch.rejected),
                ),
            )
        queued = ingest.enqueue_readings(wiring.ingest_queue(), batch.readings, tenant)
        return Reply(202, QueuedResult(queued=queued, rejected=rejected(batch.rejected)))
    outcome = readings.record_readings(
        repos, tenant, batch, now_ms=now, known=wiring.known_rooms(), caller=principal
    )
    observability.record_ingest("HTTP", outcome, time.perf_counter() - started)
    if batch.single and outcome.rejected:
        outcome.rejected[0].raise_it()
    if not batch.readings:
        return Reply(
            422,
            NothingStored(
                Code="ValidationError",
                Message=EVERY_READING_REJECTED,
                accepted=outcome.accepted,
                duplicates=outcome.duplicates,
                rejected=rejected(outcome.rejected),
            ),
        )
    return Reply(207 if outcome.rejected else 201, IngestResult.of(outcome))


@route(
    readings_api,
    ROOM + "/average",
    "GET",
    Scope.READ,
    query=AverageQuery,
    responses={200: WindowAverage},
)
def get_average(principal: Principal, building: str, room: str) -> WindowAverage:
    """Average, min and max of a metric over (at - minutes, at]."""
    building, room = scoped_room(principal, building, room)
    asked = parse_query(AverageQuery, readings_api.current_request)
    return readings.window_average(
        wiring.repositories().readings,
        owner(principal),
        building,
        room,
        metric=asked.metric,
        minutes=asked.minutes,
        at_ms=now_ms() if asked.at is None else asked.at,
        unit=asked.unit,
    )


@route(
    readings_api, ROOM + "/latest", "GET", Scope.READ, query=UnitQuery, responses={200: ReadingOut}
)
def get_latest(principal: Principal, building: str, room: str) -> ReadingOut:
    """The room's most recent reading (404 if none)."""
    building, room = scoped_room(principal, building, room)
    asked = parse_query(UnitQuery, readings_api.current_request)
    found = readings.latest_reading(
        wiring.repositories().readings, owner(principal), building, room
    )
    return ReadingOut.of(found, asked.unit)


@route(
    readings_api,
    ROOM + "/readings",
    "GET",
    Scope.READ,
    query=ReadingsQuery,
    responses={200: ReadingsPage},
)
def get_readings(principal: Principal, building: str, room: str) -> ReadingsPage:
    """A page of the room's readings in [from, to), with an opaque cursor to the next page."""
    building, room = scoped_room(principal, building, room)
    asked = parse_query(ReadingsQuery, readings_api.current_request)
    now = now_ms()
    from_ms = now - DAY_MS if asked.from_ is None else asked.from_
    to_ms = now + 1 if asked.to is None else asked.to
    after = None
    if asked.cursor is not None:
        # The cursor pins the range of its first page, so "now" moving on cannot skip readings.
        state = decode_cursor(asked.cursor, wiring.cursor_secret())
        try:
            if (state["b"], state["r"]) != (building, room):
                raise MalformedRequestError("cursor: belongs to another room")
            explicit = (asked.from_ is not None and state["f"] != from_ms) or (
                asked.to is not None and state["t"] != to_ms
            )
            if explicit:
                raise MalformedRequestError("cursor: belongs to another range")
            from_ms, to_ms, ts_ms = (_whole(state[k]) for k in ("f", "t", "ts"))
            sensor = state["s"]
            # Every field checked, as if forged: the table sees only a position inside the query.
            if not MIN_TIMESTAMP_MS <= from_ms <= ts_ms < to_ms <= MAX_TIMESTAMP_MS + 1:
                raise ValueError("range")
            if not isinstance(sensor, str) or not is_identifier(sensor):
                raise ValueError("sensor")
            after = Position(ts_ms=ts_ms, sensor_id=sensor)
        except (KeyError, TypeError, ValueError, OverflowError):
            raise MalformedRequestError("cursor: not a cursor this API issued") from None
    page = readings.list_readings(
        wiring.repositories().readings,
        owner(principal),
        building,
        room,
        from_ms=from_ms,
        to_ms=to_ms,
        limit=asked.limit,
        after=after,
    )
    following = None
    if page.next_after is not None:
        following = encode_cursor(
            {
                "b": building,
                "r": room,
                "f": from_ms,
                "t": to_ms,
                "ts": page.next_after.ts_ms,
                "s": page.next_after.sensor_id,
            },
            wiring.cursor_secret(),
        )
    return ReadingsPage(
        items=[ReadingOut.of(r, asked.unit) for r in page.items], next_cursor=following
    )


def _whole(value: object) -> int:
    """A cursor field that must be a whole number (bool and float are not)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not a whole number")
    return value
