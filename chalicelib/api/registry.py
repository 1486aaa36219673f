"""Registry routes: buildings, rooms and sensors of the caller's tenant."""

from __future__ import annotations

from chalice.app import Blueprint

from chalicelib import wiring
from chalicelib.api.bodies import AssignIn, BuildingIn, PatchIn, RoomIn, SensorIn, changes_of
from chalicelib.api.http import identifier, json_body, parse_body, parse_query
from chalicelib.api.queries import ForceQuery, PageQuery
from chalicelib.api.responses import (
    BuildingOut,
    BuildingsPage,
    ReadingOut,
    RoomOut,
    RoomsPage,
    RoomSummary,
    SensorOut,
    SensorsPage,
)
from chalicelib.api.routing import Reply, route
from chalicelib.api.scope import next_cursor, owner, page_after, reachable
from chalicelib.domain.access import Principal, Scope
from chalicelib.domain.errors import ForbiddenError
from chalicelib.domain.models import Metric
from chalicelib.domain.timeutil import now_ms
from chalicelib.services import readings, registry

registry_api = Blueprint(__name__)
BUILDING = "/buildings/{building}"
ROOM = BUILDING + "/rooms/{room}"
SENSOR = "/sensors/{sensor_id}"
GONE = {204: "Deleted"}


def _force() -> bool:
    return parse_query(ForceQuery, registry_api.current_request).force == "true"


def _page(kind: str) -> tuple[int, str | None]:
    asked = parse_query(PageQuery, registry_api.current_request)
    return asked.limit, page_after(asked.cursor, kind)


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
def post_building(principal: Principal) -> Reply:
    """Register a building for the caller's tenant."""
    body = parse_body(BuildingIn, json_body(registry_api.current_request))
    if not principal.reaches(body.building):
        raise ForbiddenError("this key is bound to other buildings")
    building = registry.create_building(
        wiring.repositories().registry,
        owner(principal),
        body.building,
        name=body.name,
        metadata=body.metadata,
        now_ms=now_ms(),
    )
    return Reply(201, BuildingOut.of(building))


@route(
    registry_api, "/buildings", "GET", Scope.READ, query=PageQuery, responses={200: BuildingsPage}
)
def list_buildings(principal: Principal) -> BuildingsPage:
    """The caller's buildings, paginated."""
    limit, after = _page("buildings")
    page = registry.list_buildings(wiring.repositories().registry, owner(principal), limit, after)
    return BuildingsPage(
        items=[BuildingOut.of(b) for b in page.items if principal.reaches(b.building)],
        next_cursor=next_cursor(page, "buildings"),
    )


@route(registry_api, BUILDING, "GET", Scope.READ, responses={200: BuildingOut})
def get_building(principal: Principal, building: str) -> BuildingOut:
    """One of the caller's buildings."""
    found = registry.owned_building(
        wiring.repositories().registry, owner(principal), reachable(principal, building)
    )
    return BuildingOut.of(found)


@route(registry_api, BUILDING, "PATCH", Scope.ADMIN, body=PatchIn, responses={200: BuildingOut})
def patch_building(principal: Principal, building: str) -> BuildingOut:
    """Change a building's name or metadata."""
    patch = parse_body(PatchIn, json_body(registry_api.current_request))
    updated = registry.update_building(
        wiring.repositories().registry,
        owner(principal),
        reachable(principal, building),
        changes_of(patch),
    )
    return BuildingOut.of(updated)


@route(
    registry_api, BUILDING, "DELETE", Scope.ADMIN, query=ForceQuery, responses=GONE, errors=(409,)
)
def delete_building(principal: Principal, building: str) -> Reply:
    """Delete a building and its rooms (409 if readings exist, unless ?force=true)."""
    repos = wiring.repositories()
    registry.delete_building(
        repos.registry,
        repos.readings,
        wiring.report_repository(),
        owner(principal),
        reachable(principal, building),
        force=_force(),
        known=wiring.known_rooms(),
        alerts=wiring.alert_repository(),
    )
    return Reply(204)


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
def post_room(principal: Principal, building: str) -> Reply:
    """Register a room in one of the caller's buildings."""
    body = parse_body(RoomIn, json_body(registry_api.current_request))
    room = registry.create_room(
        wiring.repositories().registry,
        owner(principal),
        reachable(principal, building),
        body.room,
        name=body.name,
        metadata=body.metadata,
        now_ms=now_ms(),
    )
    return Reply(201, RoomOut.of(room))


@route(
    registry_api,
    BUILDING + "/rooms",
    "GET",
    Scope.READ,
    query=PageQuery,
    responses={200: RoomsPage},
)
def list_rooms(principal: Principal, building: str) -> RoomsPage:
    """The building's rooms, each with its latest reading and 15-minute temperature average."""
    repos = wiring.repositories()
    building = reachable(principal, building)
    limit, after = _page("rooms")
    tenant = owner(principal)
    page = registry.list_rooms(repos.registry, tenant, building, limit, after)
    now = now_ms()
    items = []
    for room in page.items:
        latest = repos.readings.latest(tenant, building, room.room)
        average = readings.window_average(
            repos.readings,
            tenant,
            building,
            room.room,
            metric=Metric.TEMPERATURE,
            minutes=15,
            at_ms=now,
        )
        items.append(
            RoomSummary(
                **RoomOut.of(room).model_dump(),
                latest=None if latest is None else ReadingOut.of(latest),
                average_15m=average,
            )
        )
    return RoomsPage(items=items, next_cursor=next_cursor(page, "rooms"))


@route(registry_api, ROOM, "GET", Scope.READ, responses={200: RoomOut})
def get_room(principal: Principal, building: str, room: str) -> RoomOut:
    """One room of the caller's building."""
    found = registry.owned_room(
        wiring.repositories().registry,
        owner(principal),
        reachable(principal, building),
        identifier(room, "room"),
    )
    return RoomOut.of(found)


@route(registry_api, ROOM, "PATCH", Scope.ADMIN, body=PatchIn, responses={200: RoomOut})
def patch_room(principal: Principal, building: str, room: str) -> RoomOut:
    """Change a room's name or metadata."""
    patch = parse_body(PatchIn, json_body(registry_api.current_request))
    updated = registry.update_room(
        wiring.repositories().registry,
        owner(principal),
        reachable(principal, building),
        identifier(room, "room"),
        changes_of(patch),
    )
    return RoomOut.of(updated)


@route(registry_api, ROOM, "DELETE", Scope.ADMIN, query=ForceQuery, responses=GONE, errors=(409,))
def delete_room(principal: Principal, building: str, room: str) -> Reply:
    """Delete a room (409 if it has readings, unless ?force=true deletes them too)."""
    repos = wiring.repositories()
    registry.delete_room(
        repos.registry,
        repos.readings,
        owner(principal),
        reachable(principal, building),
        identifier(room, "room"),
        force=_force(),
        known=wiring.known_rooms(),
        alerts=wiring.alert_repository(),
    )
    wiring.rules_cache().forget(owner(principal), building)
    return Reply(204)


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
def post_sensor(principal: Principal) -> Reply:
    """Register a sensor, optionally in a room."""
    body = parse_body(SensorIn, json_body(registry_api.current_request))
    sensor = registry.create_sensor(
        wiring.repositories().registry,
        owner(principal),
        body.sensor_id,
        name=body.name,
        metadata=body.metadata,
        building=None if body.building is None else reachable(principal, body.building),
        room=body.room,
        now_ms=now_ms(),
    )
    return Reply(201, SensorOut.of(sensor))


@route(registry_api, "/sensors", "GET", Scope.READ, query=PageQuery, responses={200: SensorsPage})
def list_sensors(principal: Principal) -> SensorsPage:
    """The caller's sensors, paginated."""
    limit, after = _page("sensors")
    page = registry.list_sensors(wiring.repositories().registry, owner(principal), limit, after)
    return SensorsPage(
        items=[SensorOut.of(s) for s in page.items], next_cursor=next_cursor(page, "sensors")
    )


@route(registry_api, SENSOR, "GET", Scope.READ, responses={200: SensorOut})
def get_sensor(principal: Principal, sensor_id: str) -> SensorOut:
    """One of the caller's sensors."""
    found = registry.owned_sensor(
        wiring.repositories().registry, owner(principal), identifier(sensor_id, "sensor_id")
    )
    return SensorOut.of(found)


@route(registry_api, SENSOR, "PATCH", Scope.ADMIN, body=PatchIn, responses={200: SensorOut})
def patch_sensor(principal: Principal, sensor_id: str) -> SensorOut:
    """Change a sensor's name or metadata."""
    patch = parse_body(PatchIn, json_body(registry_api.current_request))
    updated = registry.update_sensor(
        wiring.repositories().registry,
        owner(principal),
        identifier(sensor_id, "sensor_id"),
        changes_of(patch),
    )
    return SensorOut.of(updated)


@route(registry_api, SENSOR, "DELETE", Scope.ADMIN, responses=GONE)
def delete_sensor(principal: Principal, sensor_id: str) -> Reply:
    """Unregister a sensor (its readings stay)."""
    registry.delete_sensor(
        wiring.repositories().registry, owner(principal), identifier(sensor_id, "sensor_id")
    )
    return Reply(204)


@route(
    registry_api, SENSOR + "/room", "PUT", Scope.ADMIN, body=AssignIn, responses={200: SensorOut}
)
def put_sensor_room(principal: Principal, sensor_id: str) -> SensorOut:
    """Assign a sensor to a room (earlier readings stay in their room)."""
    body = parse_body(AssignIn, json_body(registry_api.current_request))
    updated = registry.assign_sensor(
        wiring.repositories().registry,
        owner(principal),
        identifier(sensor_id, "sensor_id"),
        reachable(principal, body.building),
        body.room,
    )
    return SensorOut.of(updated)
