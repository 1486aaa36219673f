"""DynamoDB adapters of the registry and key repositories (same table as the readings).

Registry items keep their model as one JSON document (`doc`): they are small, read whole, and
free-form metadata then needs no number conversion.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from chalicelib.aws import keys
from chalicelib.aws.dynamo import DynamoTable
from chalicelib.domain.access import ApiKey
from chalicelib.domain.registry import Building, Page, Room, Sensor, Tenant

M = TypeVar("M", bound=BaseModel)


class _Documents:
    """Document items (a model as JSON in `doc`) in the one table."""

    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def put(
        self,
        key: tuple[str, str],
        model: BaseModel,
        *,
        index: tuple[str, str] | None = None,
        only_new: bool = False,
    ) -> bool:
        item: dict[str, Any] = {
            "pk": {"S": key[0]},
            "sk": {"S": key[1]},
            "doc": {"S": model.model_dump_json()},
        }
        if index is not None:
            item["gsi1pk"] = {"S": index[0]}
            item["gsi1sk"] = {"S": index[1]}
        if only_new:
            return self.table.put_if_absent(item)
        return self.table.put(item)

    def get(self, key: tuple[str, str], model: type[M]) -> M | None:
        item = self.table.get({"pk": {"S": key[0]}, "sk": {"S": key[1]}})
        return None if item is None else model.model_validate_json(item["doc"]["S"])

    def delete(self, key: tuple[str, str]) -> None:
        self.table.delete({"pk": {"S": key[0]}, "sk": {"S": key[1]}})

    def query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return self.table.query(**kwargs)

    def page(
        self,
        model: type[M],
        limit: int,
        *,
        pk: str,
        prefix: str,
        after: str | None,
        index: bool = False,
    ) -> Page:
        """Items of partition `pk` (main table or gsi1) whose sort key starts with `prefix`."""
        pk_name, sk_name = ("gsi1pk", "gsi1sk") if index else ("pk", "sk")
        # "!" sorts below every identifier character: strictly after `after`, or from the start.
        low = prefix + (after + "!" if after is not None else "!")
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": f"{pk_name} = :pk AND {sk_name} BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":pk": {"S": pk},
                ":low": {"S": low},
                ":high": {"S": prefix + keys.HIGH},
            },
            "Limit": limit + 1,
        }
        if index:
            kwargs["IndexName"] = keys.GSI1
        found: list[M] = []
        for item in self.query(**kwargs):
            found.append(model.model_validate_json(item["doc"]["S"]))
            if len(found) > limit:
                break
        more = len(found) > limit
        items = found[:limit]
        return Page(items=tuple(items), next_after=_id_of(items[-1]) if more else None)


def _id_of(model: BaseModel) -> str:
    for name in ("room", "sensor_id", "key_id", "building", "tenant"):
        value = getattr(model, name, None)
        if isinstance(value, str):
            return value
    raise TypeError(f"no id on {type(model).__name__}")


class DynamoRegistryRepository:
    """Tenants, buildings, rooms and sensors in the one table."""

    def __init__(self, table: DynamoTable) -> None:
        self._t = _Documents(table)

    def create_tenant(self, tenant: Tenant) -> bool:
        return self._t.put(keys.tenant_key(tenant.tenant), tenant, only_new=True)

    def get_tenant(self, tenant: str) -> Tenant | None:
        return self._t.get(keys.tenant_key(tenant), Tenant)

    def save_tenant(self, tenant: Tenant) -> None:
        self._t.put(keys.tenant_key(tenant.tenant), tenant)

    def list_tenants(self, limit: int, after: str | None) -> Page:
        return self._t.page(Tenant, limit, pk=keys.TENANTS_PK, prefix="", after=after)

    def create_building(self, building: Building) -> bool:
        index = keys.building_index(building.tenant, building.building)
        key = keys.building_key(building.tenant, building.building)
        return self._t.put(key, building, index=index, only_new=True)

    def get_building(self, tenant: str, building: str) -> Building | None:
        return self._t.get(keys.building_key(tenant, building), Building)

    def save_building(self, building: Building) -> None:
        index = keys.building_index(building.tenant, building.building)
        self._t.put(keys.building_key(building.tenant, building.building), building, index=index)

    def delete_building(self, tenant: str, building: str) -> None:
        pk = keys.building_key(tenant, building)[0]
        items = list(
            self._t.query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}},
                ProjectionExpression="pk, sk",
            )
        )
        # Rooms first, the building item last: a crash midway leaves a building, never orphans.
        items.sort(key=lambda i: i["sk"]["S"] == keys.META)
        for item in items:
            self._t.delete((item["pk"]["S"], item["sk"]["S"]))

    def list_buildings(self, tenant: str, limit: int, after: str | None) -> Page:
        pk = keys.building_index(tenant, "")[0]
        return self._t.page(Building, limit, pk=pk, prefix="", after=after, index=True)

    def create_room(self, room: Room) -> bool:
        key = keys.room_key(room.tenant, room.building, room.room)
        return self._t.put(key, room, only_new=True)

    def get_room(self, tenant: str, building: str, room: str) -> Room | None:
        return self._t.get(keys.room_key(tenant, building, room), Room)

    def existing_rooms(
        self, tenant: str, places: Sequence[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        """Which of the tenant's (building, room) exist: one consistent BatchGetItem per 100."""
        wanted = {keys.room_key(tenant, *place): place for place in places}
        found = self._t.table.batch_get(
            [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in wanted],
            projection="pk, sk",
            consistent=True,
        )
        return {wanted[(item["pk"]["S"], item["sk"]["S"])] for item in found}

    def save_room(self, room: Room) -> None:
        self._t.put(keys.room_key(room.tenant, room.building, room.room), room)

    def delete_room(self, tenant: str, building: str, room: str) -> None:
        self._t.delete(keys.room_key(tenant, building, room))

    def list_rooms(self, tenant: str, building: str, limit: int, after: str | None) -> Page:
        pk = keys.building_key(tenant, building)[0]
        return self._t.page(Room, limit, pk=pk, prefix=keys.ROOM_PREFIX, after=after)

    def create_sensor(self, sensor: Sensor) -> bool:
        return self._t.put(keys.sensor_key(sensor.tenant, sensor.sensor_id), sensor, only_new=True)

    def get_sensor(self, tenant: str, sensor_id: str) -> Sensor | None:
        return self._t.get(keys.sensor_key(tenant, sensor_id), Sensor)

    def save_sensor(self, sensor: Sensor) -> None:
        self._t.put(keys.sensor_key(sensor.tenant, sensor.sensor_id), sensor)

    def delete_sensor(self, tenant: str, sensor_id: str) -> None:
        self._t.delete(keys.sensor_key(tenant, sensor_id))

    def list_sensors(self, tenant: str, limit: int, after: str | None) -> Page:
        pk = keys.sensor_key(tenant, "")[0]
        return self._t.page(Sensor, limit, pk=pk, prefix=keys.SENSOR_PREFIX, after=after)


class DynamoKeyRepository:
    """API keys in the one table: one item per key, listed per tenant through gsi1."""

    def __init__(self, table: DynamoTable) -> None:
        self._t = _Documents(table)

    def create_key(self, key: ApiKey) -> None:
        self._t.put(
            keys.api_key_key(key.key_id),
            key,
            index=keys.api_key_index(key.tenant, key.key_id),
            only_new=True,
        )

    def get_key(self, key_id: str) -> ApiKey | None:
        return self._t.get(keys.api_key_key(key_id), ApiKey)

    def save_key(self, key: ApiKey) -> None:
        self._t.put(
            keys.api_key_key(key.key_id), key, index=keys.api_key_index(key.tenant, key.key_id)
        )

    def list_keys(self, tenant: str | None, limit: int, after: str | None) -> Page:
        pk = keys.api_key_index(tenant, "")[0]
        return self._t.page(ApiKey, limit, pk=pk, prefix="", after=after, index=True)
