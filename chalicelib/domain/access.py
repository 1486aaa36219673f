"""Access models: what a key may do (scopes), the key as stored, the caller it stands for."""

from __future__ import annotations

from enum import StrEnum

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


def accepted_scopes(rule: Scope | tuple[Scope, ...]) -> tuple[Scope, ...]:
    """The scopes a route's rule accepts: its scope, or any one of a tuple of them."""
    return (rule,) if isinstance(rule, Scope) else tuple(rule)


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
    # Bound keys (a device's, a gateway's) reach only these buildings / write only as these
    # sensors; None: every building, every sensor of the tenant.
    buildings: frozenset[str] | None = None
    sensors: frozenset[str] | None = None


class Principal(BaseModel):
    """Who is calling: the key's id, its tenant, its effective scopes and its bindings."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    tenant: str | None
    scopes: frozenset[Scope]
    buildings: frozenset[str] | None = None
    sensors: frozenset[str] | None = None

    def can(self, scope: Scope) -> bool:
        """Whether the key holds `scope`."""
        return scope in self.scopes

    def reaches(self, building: str) -> bool:
        """Whether the key may read or write `building` (bound keys: only their buildings)."""
        return self.buildings is None or building in self.buildings

    def refuses(self, building: str, sensor_id: str) -> str | None:
        """Why the key may not write a reading of `sensor_id` in `building` (None: it may)."""
        if not self.reaches(building):
            return f"this key is bound to other buildings than {building}"
        if self.sensors is not None and sensor_id not in self.sensors:
            return f"this key is bound to other sensors than {sensor_id}"
        return None
