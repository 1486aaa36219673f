"""Access use cases: API keys (issue, authenticate, revoke) and tenants. No Chalice, no boto3."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable

from chalicelib.domain.access import ApiKey, Principal, Scope, accepted_scopes, effective_scopes
from chalicelib.domain.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnauthenticatedError,
    ValidationError,
)
from chalicelib.domain.inputs import check_identifier
from chalicelib.domain.registry import Page, Tenant
from chalicelib.ports import KeyRepository, RegistryRepository

TOKEN_PREFIX = "rt"
_TOKEN_RE = re.compile(r"rt_([0-9a-f]{16})_([A-Za-z0-9_-]{32})")
TENANT_SCOPES = frozenset({Scope.INGEST, Scope.READ, Scope.ADMIN})


def hash_secret(secret: str) -> str:
    """The stored form of a key's secret (the secret has 192 random bits: no slow hash needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_key(
    keys: KeyRepository,
    registry: RegistryRepository,
    *,
    tenant: str | None,
    scopes: Iterable[Scope],
    name: str,
    now_ms: int,
    expires_ms: int | None = None,
    buildings: Iterable[str] | None = None,
    sensors: Iterable[str] | None = None,
    granted_by: Principal | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its token; the token is shown once and never stored.

    A key can only grant what it holds (`granted_by`; None: the operator's CLI bootstrap): its
    effective scopes, and no building or sensor its own bindings exclude.
    """
    wanted = frozenset(scopes)
    bound_buildings = None if buildings is None else frozenset(buildings)
    bound_sensors = None if sensors is None else frozenset(sensors)
    if not wanted:
        raise ValidationError("scopes: at least one scope is required")
    if tenant is None and wanted != {Scope.OPERATOR}:
        raise ValidationError("scopes: a key without a tenant can only be an operator key")
    if tenant is not None:
        if Scope.OPERATOR in wanted:
            raise ValidationError("scopes: operator keys belong to no tenant")
        if registry.get_tenant(tenant) is None:
            raise NotFoundError(f"tenant {tenant} does not exist")
    if expires_ms is not None and expires_ms <= now_ms:
        raise ValidationError("expires_at: must be in the future")
    if granted_by is not None:
        _check_grant(granted_by, wanted, bound_buildings, bound_sensors)
    if tenant is not None:
        for building in sorted(bound_buildings or ()):
            found = registry.get_building(tenant, building)
            if found is None or found.tenant != tenant:
                raise NotFoundError(f"building {building} does not exist")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(24)
    key = ApiKey(
        key_id=key_id,
        tenant=tenant,
        scopes=wanted,
        name=name,
        secret_hash=hash_secret(secret),
        created_ms=now_ms,
        expires_ms=expires_ms,
        buildings=bound_buildings,
        sensors=bound_sensors,
    )
    keys.create_key(key)
    return key, f"{TOKEN_PREFIX}_{key_id}_{secret}"


def _check_grant(
    granter: Principal,
    scopes: frozenset[Scope],
    buildings: frozenset[str] | None,
    sensors: frozenset[str] | None,
) -> None:
    """ForbiddenError unless `granter` holds every scope and binding it would hand out."""
    beyond = sorted(s.value for s in scopes - granter.scopes)
    if beyond:
        raise ForbiddenError(f"a key can only grant the scopes it holds, not {', '.join(beyond)}")
    if granter.buildings is not None and (buildings is None or not buildings <= granter.buildings):
        raise ForbiddenError("a key bound to buildings can only grant keys bound to some of them")
    if granter.sensors is not None and (sensors is None or not sensors <= granter.sensors):
        raise ForbiddenError("a key bound to sensors can only grant keys bound to some of them")


class KeyCache:
    """Keys and tenant states seen recently, so a warm Lambda needs no read per request.

    A revoked key or a disabled tenant stops working within `ttl_s` everywhere (immediately in the
    process that revoked it). The same trade-off API Gateway makes when it caches an authorizer.
    """

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, ApiKey | None, bool, Principal | None]] = {}
        # Tokens that passed every check, so a warm process skips parsing and hashing them again.
        self._verified: dict[str, tuple[float, Principal, int | None]] = {}

    def verified(self, token: str, now_ms: int) -> Principal | None:
        entry = self._verified.get(token)
        if entry is None:
            return None
        seen, principal, expires_ms = entry
        if time.monotonic() - seen > self.ttl_s or (
            expires_ms is not None and expires_ms <= now_ms
        ):
            del self._verified[token]
            return None
        return principal

    def remember(self, token: str, principal: Principal, expires_ms: int | None) -> None:
        if self.ttl_s > 0:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[token] = (time.monotonic(), principal, expires_ms)

    def get(self, key_id: str) -> tuple[ApiKey | None, bool, Principal | None] | None:
        entry = self._entries.get(key_id)
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            return None
        return entry[1], entry[2], entry[3]

    def put(self, key_id: str, key: ApiKey | None, tenant_enabled: bool) -> None:
        if self.ttl_s > 0:
            if len(self._entries) > 10_000:
                self._entries.clear()
            principal = None if key is None else principal_of_key(key)
            self._entries[key_id] = (time.monotonic(), key, tenant_enabled, principal)

    def forget(self, key_id: str | None = None) -> None:
        if key_id is None:
            self._entries.clear()
            self._verified.clear()
        else:
            self._entries.pop(key_id, None)
            self._verified = {t: v for t, v in self._verified.items() if v[1].key_id != key_id}


def authenticate(
    keys: KeyRepository,
    registry: RegistryRepository,
    token: str | None,
    now_ms: int,
    cache: KeyCache | None = None,
) -> Principal:
    """The caller behind a token; UnauthenticatedError for missing/unknown/revoked/expired keys."""
    if not token:
        raise UnauthenticatedError("an API key is required: Authorization: Bearer <key>")
    if cache is not None:
        known = cache.verified(token, now_ms)
        if known is not None:
            return known
    match = _TOKEN_RE.fullmatch(token)
    if match is None:
        raise UnauthenticatedError("the API key is not valid")
    key_id, secret = match.groups()
    cached = cache.get(key_id) if cache is not None else None
    principal = None
    if cached is None:
        key = keys.get_key(key_id)
        tenant_enabled = True
        if key is not None and key.tenant is not None:
            tenant = registry.get_tenant(key.tenant)
            tenant_enabled = tenant is not None and not tenant.disabled
        if cache is not None:
            cache.put(key_id, key, tenant_enabled)
    else:
        key, tenant_enabled, principal = cached
    if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
        raise UnauthenticatedError("the API key is not valid")
    if key.revoked_ms is not None:
        raise UnauthenticatedError("the API key was revoked")
    if key.expires_ms is not None and key.expires_ms <= now_ms:
        raise UnauthenticatedError("the API key has expired")
    if not tenant_enabled:
        raise UnauthenticatedError("the API key's tenant is disabled")
    principal = principal or principal_of_key(key)
    if cache is not None:
        cache.remember(token, principal, key.expires_ms)
    return principal


def principal_of_key(key: ApiKey) -> Principal:
    """The caller a valid key stands for."""
    return Principal(
        key_id=key.key_id,
        tenant=key.tenant,
        scopes=effective_scopes(key.scopes),
        buildings=key.buildings,
        sensors=key.sensors,
    )


def require(principal: Principal, scope: Scope | tuple[Scope, ...]) -> None:
    """ForbiddenError unless the principal holds `scope` (a tuple: any one of them)."""
    wanted = accepted_scopes(scope)
    if not any(principal.can(s) for s in wanted):
        names = " or ".join(f"'{s.value}'" for s in wanted)
        raise ForbiddenError(f"this key lacks the {names} scope")


def tenant_of(principal: Principal) -> str:
    """The caller's tenant (operator keys have none and may not touch tenant data)."""
    if principal.tenant is None:
        raise ForbiddenError("operator keys manage tenants; they hold no tenant's data")
    return principal.tenant


def list_keys(keys: KeyRepository, tenant: str, limit: int, after: str | None) -> Page:
    """The tenant's keys, without secrets."""
    return keys.list_keys(tenant, limit, after)


def revoke_key(
    keys: KeyRepository, tenant: str, key_id: str, now_ms: int, cache: KeyCache | None = None
) -> ApiKey:
    """Revoke one of the tenant's keys (idempotent); 404 for another tenant's key."""
    key = keys.get_key(key_id)
    if key is None or key.tenant != tenant:
        raise NotFoundError(f"key {key_id} does not exist")
    if key.revoked_ms is None:
        key = key.model_copy(update={"revoked_ms": now_ms})
        keys.save_key(key)
    if cache is not None:
        cache.forget(key_id)
    return key


def list_tenants(registry: RegistryRepository, limit: int, after: str | None) -> Page:
    """Every tenant, by id."""
    return registry.list_tenants(limit, after)


def create_tenant(registry: RegistryRepository, tenant: str, name: str, now_ms: int) -> Tenant:
    """Create a tenant; 409 if the id is taken."""
    check_identifier(tenant, "tenant")
    created = Tenant(tenant=tenant, name=name or tenant, created_ms=now_ms)
    if not registry.create_tenant(created):
        raise ConflictError(f"tenant {tenant} already exists")
    return created


def ensure_tenant(registry: RegistryRepository, tenant: str, now_ms: int) -> Tenant:
    """The tenant, created if missing (bootstrap)."""
    existing = registry.get_tenant(tenant)
    if existing is not None:
        return existing
    check_identifier(tenant, "tenant")
    created = Tenant(tenant=tenant, name=tenant, created_ms=now_ms)
    registry.create_tenant(created)
    return registry.get_tenant(tenant) or created


def get_tenant(registry: RegistryRepository, tenant: str) -> Tenant:
    """One tenant; 404 if unknown."""
    found = registry.get_tenant(tenant)
    if found is None:
        raise NotFoundError(f"tenant {tenant} does not exist")
    return found


def set_tenant_disabled(
    registry: RegistryRepository, tenant: str, disabled: bool, cache: KeyCache | None = None
) -> Tenant:
    """Disable (or enable) a tenant: its keys stop (or start) working; its data stays."""
    found = get_tenant(registry, tenant).model_copy(update={"disabled": disabled})
    registry.save_tenant(found)
    if cache is not None:
        cache.forget()
    return found
