"""Registry routes: buildings, rooms and sensors of the caller's tenant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalice.app import Blueprint, Response

from chalicelib.api.bodies import (
    AssignIn,
    BuildingIn,
    PatchIn,
    RoomIn,
    SensorIn,
    changes_of,
    parse_body,
)
from chalicelib.api.http import identifier, int_param, json_body, query
from chalicelib.api.responses import (
    BuildingOut,
    BuildingsPage,
    RoomOut,
    RoomsPage,
    SensorOut,
    SensorsPage,
)
from chalicelib.api.routedoc import CURSOR, FORCE, limit_param
from chalicelib.api.routing import route
from chalicelib.domain.cursors import decode_cursor, encode_cursor
from chalicelib.domain.errors import MalformedRequestError
from chalicelib.domain.models import Metric
from chalicelib.domain.registry import Page, Principal, Scope
from chalicelib.domain.timeutil import now_ms
from chalicelib.services import access, registry
from chalicelib.services import readings as services
from chalicelib.wiring import known_rooms, repositories

registry_api = Blueprint(__name__)
BUILDING = "/buildings/{building}"
ROOM = BUILDING + "/rooms/{room}"
SENSOR = "/sensors/{sensor_id}"
PAGE = [limit_param(50, 100), CURSOR]
GONE = {204: "Deleted"}


def page_params(params: Mapping[str, str], kind: str) -> tuple[int, str | None]:
    """`limit` (1-100, default 50) and the id after which the page starts, from `cursor`."""
    limit = int_param(params, "limit", 50, 1, 100)
    if "cursor" not in params:
        return limit, None
    state = decode_cursor(params["cursor"])
    if state.get("k") != kind or not isinstance(state.get("a"), str):
        raise MalformedRequestError("cursor: not a cursor of this list")
    return limit, state["a"]


def page_json(page: Page, kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A list answer: items and the opaque cursor of the next page (null on the last)."""
    cursor = None if page.next_after is None else encode_cursor({"k": kind, "a": page.next_after})
    return {"items": items, "next_cursor": cursor}


def created(body: dict[str, Any]) -> Response:
    return Response(body=body, status_code=201)


def no_content() -> Response:
    return Response(body="", status_code=204)


def _force(params: Mapping[str, str]) -> bool:
    return params.get("force", "false").lower() == "true"


# -- buildings --------------------------------------------------------------------------------


@route(
    registry_api,
    "/buildings",
    "POST",
    Scope.ADMIN,
    body=BuildingIn,
    responses={201: BuildingOut},
    errors=(409,),
)
def post_building(principal: Principal) -> Response:
    """Register a building for the caller's tenant."""
    body = parse_body(BuildingIn, json_body(registry_api.current_request))
    building = registry.create_building(
        repositories().registry,
        access.tenant_of(principal),
        body.building,
        name=body.name,
        metadata=body.metadata,
        now_ms=now_ms(),
    )
    return created(building.to_json())


@route(registry_api, "/buildings", "GET", Scope.READ, query=PAGE, responses={200: BuildingsPage})
def list_buildings(principal: Principal) -> dict[str, Any]:
    """The caller's buildings, paginated."""
    limit, after = page_params(query(registry_api.current_request), "buildings")
    page = registry.list_buildings(
        repositories().registry, access.tenant_of(principal), limit, after
    )
    return page_json(page, "buildings", [b.to_json() for b in page.items])


@route(registry_api, BUILDING, "GET", Scope.READ, responses={200: BuildingOut})
def get_building(principal: Principal, building: str) -> dict[str, Any]:
    """One of the caller's buildings."""
    found = registry.owned_building(
        repositories().registry, access.tenant_of(principal), identifier(building, "building")
    )
    return found.to_json()


@route(registry_api, BUILDING, "PATCH", Scope.ADMIN, body=PatchIn, responses={200: BuildingOut})
def patch_building(principal: Principal, building: str) -> dict[str, Any]:
    """Change a building's name or metadata."""
    patch = parse_body(PatchIn, json_body(registry_api.current_request))
    updated = registry.update_building(
        repositories().registry,
        access.tenant_of(principal),
        identifier(building, "building"),
        changes_of(patch),
    )
    return updated.to_json()


@route(registry_api, BUILDING, "DELETE", Scope.ADMIN, query=[FORCE], responses=GONE, errors=(409,))
def delete_building(principal: Principal, building: str) -> Response:
    """Delete a building and its rooms (409 if readings exist, unless ?force=true)."""
    repos = repositories()
    registry.delete_building(
        repos.registry,
        repos.readings,
        access.tenant_of(principal),
        identifier(building, "building"),
        force=_force(query(registry_api.current_request)),
        known=known_rooms(),
    )
    return no_content()


# -- rooms ------------------------------------------------------------------------------------


@route(
    registry_api,
    BUILDING + "/rooms",
    "POST",
    Scope.ADMIN,
    body=RoomIn,
    responses={201: RoomOut},
    errors=(409,),
)
def post_room(principal: Principal, building: str) -> Response:
    """Register a room in one of the caller's buildings."""
    body = parse_body(RoomIn, json_body(registry_api.current_request))
    room = registry.create_room(
        repositories().registry,
        access.tenant_of(principal),
        identifier(building, "building"),
        body.room,
        name=body.name,
        metadata=body.metadata,
        now_ms=now_ms(),
    )
    return created(room.to_json())


@route(registry_api, BUILDING + "/rooms", "GET", Scope.READ, query=PAGE, responses={200: RoomsPage})
def list_rooms(principal: Principal, building: str) -> dict[str, Any]:
    """The building's rooms, each with its latest reading and 15-minute temperature average."""
    repos = repositories()
    building = identifier(building, "building")
    limit, after = page_params(query(registry_api.current_request), "rooms")
    page = registry.list_rooms(repos.registry, access.tenant_of(principal), building, limit, after)
    now = now_ms()
    items = []
    for room in page.items:
        latest = repos.readings.latest(building, room.room)
        average = services.window_average(
            repos.readings, building, room.room, metric=Metric.TEMPERATURE, minutes=15, at_ms=now
        )
        items.append(
            {
                **room.to_json(),
                "latest": None if latest is None else latest.to_json(),
                "average_15m": average.to_json(),
            }
        )
    return page_json(page, "rooms", items)


@route(registry_api, ROOM, "GET", Scope.READ, responses={200: RoomOut})
def get_room(principal: Principal, building: str, room: str) -> dict[str, Any]:
    """One room of the caller's building."""
    found = registry.owned_room(
        repositories().registry,
        access.tenant_of(principal),
        identifier(building, "building"),
        identifier(room, "room"),
    )
    return found.to_json()


@route(registry_api, ROOM, "PATCH", Scope.ADMIN, body=PatchIn, responses={200: RoomOut})
def patch_room(principal: Principal, building: str, room: str) -> dict[str, Any]:
    """Change a room's name or metadata."""
    patch = parse_body(PatchIn, json_body(registry_api.current_request))
    updated = registry.update_room(
        repositories().registry,
        access.tenant_of(principal),
        identifier(building, "building"),
        identifier(room, "room"),
        changes_of(patch),
    )
    return updated.to_json()


@route(registry_api, ROOM, "DELETE", Scope.ADMIN, query=[FORCE], responses=GONE, errors=(409,))
def delete_room(principal: Principal, building: str, room: str) -> Response:
    """Delete a room (409 if it has readings, unless ?force=true deletes them too)."""
    repos = repositories()
    registry.delete_room(
        repos.registry,
        repos.readings,
        access.tenant_of(principal),
        identifier(building, "building"),
        identifier(room, "room"),
        force=_force(query(registry_api.current_request)),
        known=known_rooms(),
    )
    return no_content()


# -- sensors ----------------------------------------------------------------------------------


@route(
    registry_api,
    "/sensors",
    "POST",
    Scope.ADMIN,
    body=SensorIn,
    responses={201: SensorOut},
    errors=(404, 409),
)
def post_sensor(principal: Principal) -> Response:
    """Register a sensor, optionally in a room."""
    body = parse_body(SensorIn, json_body(registry_api.current_request))
    sensor = registry.create_sensor(
        repositories().registry,
        access.tenant_of(principal),
        body.sensor_id,
        name=body.name,
        metadata=body.metadata,
        building=body.building,
        room=body.room,
        now_ms=now_ms(),
    )
    return created(sensor.to_json())


@route(registry_api, "/sensors", "GET", Scope.READ, query=PAGE, responses={200: SensorsPage})
def list_sensors(principal: Principal) -> dict[str, Any]:
    """The caller's sensors, paginated."""
    limit, after = page_params(query(registry_api.current_request), "sensors")
    page = registry.list_sensors(repositories().registry, access.tenant_of(principal), limit, after)
    return page_json(page, "sensors", [s.to_json() for s in page.items])


@route(registry_api, SENSOR, "GET", Scope.READ, responses={200: SensorOut})
def get_sensor(principal: Principal, sensor_id: str) -> dict[str, Any]:
    """One of the caller's sensors."""
    return registry.owned_sensor(
        repositories().registry, access.tenant_of(principal), identifier(sensor_id, "sensor_id")
    ).to_json()


@route(registry_api, SENSOR, "PATCH", Scope.ADMIN, body=PatchIn, responses={200: SensorOut})
def patch_sensor(principal: Principal, sensor_id: str) -> dict[str, Any]:
    """Change a sensor's name or metadata."""
    patch = parse_body(PatchIn, json_body(registry_api.current_request))
    return registry.update_sensor(
        repositories().registry,
        access.tenant_of(principal),
        identifier(sensor_id, "sensor_id"),
        changes_of(patch),
    ).to_json()


@route(registry_api, SENSOR, "DELETE", Scope.ADMIN, responses=GONE)
def delete_sensor(principal: Principal, sensor_id: str) -> Response:
    """Unregister a sensor (its readings stay)."""
    registry.delete_sensor(
        repositories().registry, access.tenant_of(principal), identifier(sensor_id, "sensor_id")
    )
    return no_content()


@route(
    registry_api, SENSOR + "/room", "PUT", Scope.ADMIN, body=AssignIn, responses={200: SensorOut}
)
def put_sensor_room(principal: Principal, sensor_id: str) -> dict[str, Any]:
    """Assign a sensor to a room (earlier readings stay in their room)."""
    body = parse_body(AssignIn, json_body(registry_api.current_request))
    return registry.assign_sensor(
        repositories().registry,
        access.tenant_of(principal),
        identifier(sensor_id, "sensor_id"),
        body.building,
        body.room,
    ).to_json()
