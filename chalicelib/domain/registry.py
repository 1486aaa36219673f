"""Registry models: tenants own buildings, buildings have rooms, sensors sit in rooms."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Tenant(BaseModel):
    """A customer: owns buildings and keys."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    name: str
    disabled: bool = False
    created_ms: int


class Building(BaseModel):
    """A building of one tenant; its id is the tenant's own (another tenant's "hq" is another
    building)."""

    model_config = ConfigDict(frozen=True)

    building: str
    tenant: str
    name: str
    metadata: dict[str, Any]
    created_ms: int


class Room(BaseModel):
    """A room of a tenant's building; readings are kept per room."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    building: str
    room: str
    name: str
    metadata: dict[str, Any]
    created_ms: int


class Sensor(BaseModel):
    """A registered sensor of a tenant, assigned to at most one room at a time."""

    model_config = ConfigDict(frozen=True)

    sensor_id: str
    tenant: str
    name: str
    metadata: dict[str, Any]
    building: str | None = None
    room: str | None = None
    created_ms: int


class Page(BaseModel):
    """One page of a registry list and the id after which the next page starts."""

    model_config = ConfigDict(frozen=True)

    items: tuple[Any, ...]
    next_after: str | None
