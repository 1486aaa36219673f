"""Registry use cases: buildings, rooms and sensors of a tenant. No Chalice, no boto3.

Every lookup is tenant-scoped: another tenant's building, room or sensor is reported exactly like
one that does not exist (404), so ids cannot be probed.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from chalicelib.domain.errors import ConflictError, NotFoundError, ValidationError
from chalicelib.domain.inputs import UNRESOLVED, ParsedBatch, Rejection, check_identifier
from chalicelib.domain.models import Reading
from chalicelib.domain.registry import Building, Page, Room, Sensor
from chalicelib.ports import (
    AlertRepository,
    ReadingRepository,
    RegistryRepository,
    ReportRepository,
)

MAX_METADATA_BYTES = 4096


def check_metadata(metadata: Any) -> dict[str, Any]:
    """Free-form metadata: a JSON object of at most 4 KiB."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValidationError("metadata: must be a JSON object")
    if len(json.dumps(metadata, separators=(",", ":"))) > MAX_METADATA_BYTES:
        raise ValidationError(f"metadata: at most {MAX_METADATA_BYTES} bytes of JSON")
    return metadata


class KnownRooms:
    """Rooms recently confirmed to exist in a tenant's building: the ingest hot path skips reads.

    Only positive answers are kept, for `ttl_s`; deleting a room forgets it in this process.
    """

    def __init__(self, ttl_s: float = 60.0) -> None:
        self.ttl_s = ttl_s
        self._seen: dict[tuple[str, str, str], float] = {}

    def __contains__(self, key: tuple[str, str, str]) -> bool:
        seen = self._seen.get(key)
        return seen is not None and time.monotonic() - seen <= self.ttl_s

    def add(self, key: tuple[str, str, str]) -> None:
        if self.ttl_s > 0:
            if len(self._seen) > 100_000:
                self._seen.clear()
            self._seen[key] = time.monotonic()

    def forget(self) -> None:
        """Forget every room."""
        self._seen.clear()

    def forget_building(self, tenant: str, building: str) -> None:
        """Forget the rooms of one of the tenant's buildings."""
        self._seen = {k: v for k, v in self._seen.items() if k[:2] != (tenant, building)}


# -- buildings --------------------------------------------------------------------------------


def owned_building(registry: RegistryRepository, tenant: str, building: str) -> Building:
    """The tenant's building; 404 when it does not exist or is another tenant's."""
    found = registry.get_building(tenant, building)
    if found is None or found.tenant != tenant:
        raise NotFoundError(f"building {building} does not exist")
    return found


def create_building(
    registry: RegistryRepository,
    tenant: str,
    building: str,
    *,
    name: str | None,
    metadata: Any,
    now_ms: int,
) -> Building:
    """Register a building for the tenant; 409 if the tenant has one of that id already (ids are
    each tenant's own: another tenant's "hq" is another building, and tells nothing)."""
    check_identifier(building, "building")
    created = Building(
        building=building,
        tenant=tenant,
        name=name or building,
        metadata=check_metadata(metadata),
        created_ms=now_ms,
    )
    if not registry.create_building(created):
        raise ConflictError(f"building {building} already exists")
    return created


def update_building(
    registry: RegistryRepository, tenant: str, building: str, changes: dict[str, Any]
) -> Building:
    """Change a building's name and/or metadata."""
    found = owned_building(registry, tenant, building)
    updated = found.model_copy(update=_changes(changes))
    registry.save_building(updated)
    return updated


def delete_building(
    registry: RegistryRepository,
    readings: ReadingRepository,
    reports: ReportRepository,
    tenant: str,
    building: str,
    *,
    force: bool,
    known: KnownRooms | None = None,
    alerts: AlertRepository | None = None,
) -> None:
    """Delete a building and everything of it: its rooms' readings and rollups, its reports,
    its alert rules and events, its registry items; 409 if a room has readings, unless `force`
    deletes them too. A building of the same id created later starts empty."""
    owned_building(registry, tenant, building)
    rooms = _all_rooms(registry, tenant, building)
    with_data = [r.room for r in rooms if readings.has_readings(tenant, building, r.room)]
    if with_data and not force:
        raise ConflictError(
            f"rooms with readings: {', '.join(with_data[:10])}; use ?force=true to delete them too"
        )
    # Every room's partition, readings or not: rollups outlive raw readings that expired.
    for room in rooms:
        readings.delete_room_data(tenant, building, room.room)
    reports.delete_for_building(tenant, building)
    if alerts is not None:
        alerts.delete_for_building(tenant, building)
    _unassign_sensors(registry, tenant, building, None)
    registry.delete_building(tenant, building)
    if known is not None:
        known.forget_building(tenant, building)


def list_buildings(
    registry: RegistryRepository, tenant: str, limit: int, after: str | None
) -> Page:
    """The tenant's buildings, by id."""
    return registry.list_buildings(tenant, limit, after)


# -- rooms ------------------------------------------------------------------------------------


def owned_room(registry: RegistryRepository, tenant: str, building: str, room: str) -> Room:
    """The tenant's room; 404 when the building or room does not exist or is another tenant's."""
    owned_building(registry, tenant, building)
    found = registry.get_room(tenant, building, room)
    if found is None:
        raise NotFoundError(f"room {building}/{room} does not exist")
    return found


def check_room(
    registry: RegistryRepository,
    tenant: str,
    building: str,
    room: str,
    known: KnownRooms | None = None,
) -> None:
    """404 unless the room exists in the tenant's building (recent answers come from `known`)."""
    if known is not None and (tenant, building, room) in known:
        return
    owned_room(registry, tenant, building, room)
    if known is not None:
        known.add((tenant, building, room))


def create_room(
    registry: RegistryRepository,
    tenant: str,
    building: str,
    room: str,
    *,
    name: str | None,
    metadata: Any,
    now_ms: int,
) -> Room:
    """Register a room in the tenant's building; 409 if it exists."""
    owned_building(registry, tenant, building)
    check_identifier(room, "room")
    created = Room(
        tenant=tenant,
        building=building,
        room=room,
        name=name or room,
        metadata=check_metadata(metadata),
        created_ms=now_ms,
    )
    if not registry.create_room(created):
        raise ConflictError(f"room {building}/{room} already exists")
    return created


def update_room(
    registry: RegistryRepository, tenant: str, building: str, room: str, changes: dict[str, Any]
) -> Room:
    """Change a room's name and/or metadata."""
    found = owned_room(registry, tenant, building, room)
    updated = found.model_copy(update=_changes(changes))
    registry.save_room(updated)
    return updated


def delete_room(
    registry: RegistryRepository,
    readings: ReadingRepository,
    tenant: str,
    building: str,
    room: str,
    *,
    force: bool,
    known: KnownRooms | None = None,
    alerts: AlertRepository | None = None,
) -> None:
    """Delete a room and everything of it (readings, rollups, its alert rules, its states of
    building-wide rules, its alert events); 409 if it has readings, unless `force` deletes them
    too. A room of the same id created later starts clean."""
    owned_room(registry, tenant, building, room)
    if readings.has_readings(tenant, building, room) and not force:
        raise ConflictError(f"room {building}/{room} has readings; use ?force=true")
    readings.delete_room_data(tenant, building, room)  # rollups may outlive expired readings
    if alerts is not None:
        alerts.delete_for_room(tenant, building, room)
    _unassign_sensors(registry, tenant, building, room)
    registry.delete_room(tenant, building, room)
    if known is not None:
        known.forget_building(tenant, building)


def list_rooms(
    registry: RegistryRepository, tenant: str, building: str, limit: int, after: str | None
) -> Page:
    """The rooms of the tenant's building, by id."""
    owned_building(registry, tenant, building)
    return registry.list_rooms(tenant, building, limit, after)


def all_rooms(registry: RegistryRepository, tenant: str, building: str) -> list[Room]:
    """Every room of the tenant's building, page after page."""
    return _all_rooms(registry, tenant, building)


def _all_rooms(registry: RegistryRepository, tenant: str, building: str) -> list[Room]:
    rooms: list[Room] = []
    after = None
    while True:
        page = registry.list_rooms(tenant, building, 500, after)
        rooms.extend(page.items)
        if page.next_after is None:
            return rooms
        after = page.next_after


# -- sensors ----------------------------------------------------------------------------------


def owned_sensor(registry: RegistryRepository, tenant: str, sensor_id: str) -> Sensor:
    """The tenant's sensor; 404 otherwise."""
    found = registry.get_sensor(tenant, sensor_id)
    if found is None:
        raise NotFoundError(f"sensor {sensor_id} does not exist")
    return found


def create_sensor(
    registry: RegistryRepository,
    tenant: str,
    sensor_id: str,
    *,
    name: str | None,
    metadata: Any,
    building: str | None,
    room: str | None,
    now_ms: int,
) -> Sensor:
    """Register a sensor, optionally assigned to a room of the tenant; 409 if it exists."""
    check_identifier(sensor_id, "sensor_id")
    if (building is None) != (room is None):
        raise ValidationError("building and room go together: give both, or neither")
    if building is not None and room is not None:
        owned_room(registry, tenant, building, room)
    created = Sensor(
        sensor_id=sensor_id,
        tenant=tenant,
        name=name or sensor_id,
        metadata=check_metadata(metadata),
        building=building,
        room=room,
        created_ms=now_ms,
    )
    if not registry.create_sensor(created):
        raise ConflictError(f"sensor {sensor_id} already exists")
    return created


def update_sensor(
    registry: RegistryRepository, tenant: str, sensor_id: str, changes: dict[str, Any]
) -> Sensor:
    """Change a sensor's name and/or metadata."""
    found = owned_sensor(registry, tenant, sensor_id)
    updated = found.model_copy(update=_changes(changes))
    registry.save_sensor(updated)
    return updated


def assign_sensor(
    registry: RegistryRepository, tenant: str, sensor_id: str, building: str, room: str
) -> Sensor:
    """Assign a sensor to a room; its earlier readings stay in the room they were sent to."""
    found = owned_sensor(registry, tenant, sensor_id)
    owned_room(registry, tenant, building, room)
    updated = found.model_copy(update={"building": building, "room": room})
    registry.save_sensor(updated)
    return updated


def delete_sensor(registry: RegistryRepository, tenant: str, sensor_id: str) -> None:
    """Unregister a sensor; its readings stay."""
    owned_sensor(registry, tenant, sensor_id)
    registry.delete_sensor(tenant, sensor_id)


def list_sensors(registry: RegistryRepository, tenant: str, limit: int, after: str | None) -> Page:
    """The tenant's sensors, by id."""
    return registry.list_sensors(tenant, limit, after)


def _unassign_sensors(
    registry: RegistryRepository, tenant: str, building: str, room: str | None
) -> None:
    after = None
    while True:
        page = registry.list_sensors(tenant, 500, after)
        for sensor in page.items:
            if sensor.building == building and (room is None or sensor.room == room):
                registry.save_sensor(sensor.model_copy(update={"building": None, "room": None}))
        if page.next_after is None:
            return
        after = page.next_after


def _changes(changes: dict[str, Any]) -> dict[str, Any]:
    allowed = {"name", "metadata"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError(
            f"only name and metadata can change, not {', '.join(sorted(unknown))}"
        )
    update: dict[str, Any] = {}
    if "name" in changes:
        name = changes["name"]
        if not isinstance(name, str) or not 1 <= len(name) <= 200:
            raise ValidationError("name: must be a string of 1-200 characters")
        update["name"] = name
    if "metadata" in changes:
        update["metadata"] = check_metadata(changes["metadata"])
    return update


# -- readings meet the registry ---------------------------------------------------------------


def resolve_rooms(
    registry: RegistryRepository,
    tenant: str,
    batch: ParsedBatch,
    now_ms: int,
    known: KnownRooms | None = None,
) -> None:
    """Place every valid reading of `batch` in a room of the writer's tenant, or reject it.

    Sensor-only readings take their sensor's room (unknown or unassigned sensor: 422). Buildings
    and rooms named for the first time are created in the writer's tenant: building ids are
    each tenant's own, so a reading can never land in another tenant's building.
    """
    sensors: dict[str, Sensor | None] = {}
    kept: list[tuple[int, Reading]] = []
    rejected: list[Rejection] = []
    for index, reading in zip(batch.positions, batch.readings, strict=True):
        if reading.building != UNRESOLVED:
            kept.append((index, replace(reading, tenant=tenant)))
            continue
        if reading.sensor_id not in sensors:
            sensors[reading.sensor_id] = registry.get_sensor(tenant, reading.sensor_id)
        sensor = sensors[reading.sensor_id]
        if sensor is None:
            problem = f"sensor {reading.sensor_id} is not registered"
            rejected.append(Rejection(index, ValidationError, problem))
        elif sensor.building is None or sensor.room is None:
            problem = f"sensor {reading.sensor_id} has no room"
            rejected.append(Rejection(index, ValidationError, problem))
        else:
            placed = replace(reading, tenant=tenant, building=sensor.building, room=sensor.room)
            kept.append((index, placed))
    batch.settle(kept, rejected)
    places = sorted({(r.building, r.room) for r in batch.readings})
    unknown = [p for p in places if known is None or (tenant, *p) not in known]
    if not unknown:
        return
    # One read for every room not in the cache (a gateway's 100 rooms: one BatchGetItem).
    existing = registry.existing_rooms(tenant, unknown)
    buildings: set[str] = set()
    for building, room in unknown:
        if (building, room) not in existing:
            _create_room(registry, tenant, building, room, now_ms, buildings)
        if known is not None:
            known.add((tenant, building, room))


def _create_room(
    registry: RegistryRepository,
    tenant: str,
    building: str,
    room: str,
    now_ms: int,
    checked: set[str],
) -> None:
    """Create the tenant's room, and its building first if it has none (a room exists only
    in an existing building). Concurrent writers may create either first: both stay the
    tenant's, as `create_*` write only new items."""
    if building not in checked:
        checked.add(building)
        if registry.get_building(tenant, building) is None:
            registry.create_building(
                Building(
                    building=building, tenant=tenant, name=building, metadata={}, created_ms=now_ms
                )
            )
    registry.create_room(
        Room(tenant=tenant, building=building, room=room, name=room, metadata={}, created_ms=now_ms)
    )
