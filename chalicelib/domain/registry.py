"""Registry and access models: tenants own buildings, buildings have rooms, keys carry scopes."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class Scope(StrEnum):
    """What an API key may do."""

    INGEST = "ingest"  # POST readings only
    READ = "read"  # every GET of the tenant's data
    ADMIN = "admin"  # registry and key management within the tenant (implies read)
    OPERATOR = "operator"  # platform-wide: tenants; no tenant's data


IMPLIED_SCOPES: dict[Scope, frozenset[Scope]] = {
    Scope.ADMIN: frozenset({Scope.ADMIN, Scope.READ}),
}


def effective_scopes(scopes: frozenset[Scope]) -> frozenset[Scope]:
    """The scopes a key holds, with the ones its scopes imply."""
    result = set(scopes)
    for scope in scopes:
        result |= IMPLIED_SCOPES.get(scope, frozenset())
    return frozenset(result)


class Tenant(BaseModel):
    """A customer: owns buildings and keys."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    name: str
    disabled: bool = False
    created_ms: int


class Building(BaseModel):
    """A building, owned by one tenant; its id is unique across the platform."""

    model_config = ConfigDict(frozen=True)

    building: str
    tenant: str
    name: str
    metadata: dict[str, Any]
    created_ms: int


class Room(BaseModel):
    """A room of a building; readings are kept per room."""

    model_config = ConfigDict(frozen=True)

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


class ApiKey(BaseModel):
    """An API key as stored: never the secret, only its hash."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    tenant: str | None  # None: an operator key, tied to no tenant
    scopes: frozenset[Scope]
    name: str
    secret_hash: str
    created_ms: int
    expires_ms: int | None = None
    revoked_ms: int | None = None


class Principal(BaseModel):
    """Who is calling: the key's id, its tenant and its effective scopes."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    tenant: str | None
    scopes: frozenset[Scope]

    def can(self, scope: Scope) -> bool:
        """Whether the key holds `scope`."""
        return scope in self.scopes


class Page(BaseModel):
    """One page of a registry list and the id after which the next page starts."""

    model_config = ConfigDict(frozen=True)

    items: tuple[Any, ...]
    next_after: str | None
