"""Access routes: the tenant's API keys (admin) and the platform's tenants (operator)."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint, Response

from chalicelib.api.bodies import KeyIn, TenantIn, TenantPatch, parse_body
from chalicelib.api.http import identifier, json_body, query
from chalicelib.api.registry import created, no_content, page_json, page_params
from chalicelib.api.responses import KeyCreated, KeysPage, TenantOut, TenantsPage
from chalicelib.api.routedoc import CURSOR, limit_param
from chalicelib.api.routing import route
from chalicelib.domain.registry import Principal, Scope
from chalicelib.domain.timeutil import now_ms, parse_iso
from chalicelib.services import access
from chalicelib.wiring import key_cache, repositories

access_api = Blueprint(__name__)
PAGE = [limit_param(50, 100), CURSOR]


@route(access_api, "/keys", "POST", Scope.ADMIN, body=KeyIn, responses={201: KeyCreated})
def post_key(principal: Principal) -> Response:
    """Issue a key for the caller's tenant; the secret is in this answer only."""
    body = parse_body(KeyIn, json_body(access_api.current_request))
    repos = repositories()
    expires = None if body.expires_at is None else parse_iso(body.expires_at, "expires_at")
    key, token = access.issue_key(
        repos.keys,
        repos.registry,
        tenant=access.tenant_of(principal),
        scopes=body.scopes,
        name=body.name,
        now_ms=now_ms(),
        expires_ms=expires,
    )
    return created({**key.to_json(), "key": token})


@route(access_api, "/keys", "GET", Scope.ADMIN, query=PAGE, responses={200: KeysPage})
def list_keys(principal: Principal) -> dict[str, Any]:
    """The tenant's keys (never their secrets)."""
    limit, after = page_params(query(access_api.current_request), "keys")
    page = access.list_keys(repositories().keys, access.tenant_of(principal), limit, after)
    return page_json(page, "keys", [k.to_json() for k in page.items])


@route(access_api, "/keys/{key_id}", "DELETE", Scope.ADMIN, responses={204: "Revoked"})
def delete_key(principal: Principal, key_id: str) -> Response:
    """Revoke one of the tenant's keys."""
    access.revoke_key(
        repositories().keys,
        access.tenant_of(principal),
        identifier(key_id, "key_id"),
        now_ms(),
        key_cache(),
    )
    return no_content()


@route(
    access_api,
    "/tenants",
    "POST",
    Scope.OPERATOR,
    body=TenantIn,
    responses={201: TenantOut},
    errors=(409,),
)
def post_tenant(principal: Principal) -> Response:
    """Create a tenant (operator)."""
    body = parse_body(TenantIn, json_body(access_api.current_request))
    tenant = access.create_tenant(repositories().registry, body.tenant, body.name or "", now_ms())
    return created(tenant.to_json())


@route(access_api, "/tenants", "GET", Scope.OPERATOR, query=PAGE, responses={200: TenantsPage})
def list_tenants(principal: Principal) -> dict[str, Any]:
    """Every tenant (operator)."""
    limit, after = page_params(query(access_api.current_request), "tenants")
    page = repositories().registry.list_tenants(limit, after)
    return page_json(page, "tenants", [t.to_json() for t in page.items])


@route(access_api, "/tenants/{tenant}", "GET", Scope.OPERATOR, responses={200: TenantOut})
def get_tenant(principal: Principal, tenant: str) -> dict[str, Any]:
    """One tenant (operator)."""
    return access.get_tenant(repositories().registry, identifier(tenant, "tenant")).to_json()


@route(
    access_api,
    "/tenants/{tenant}",
    "PATCH",
    Scope.OPERATOR,
    body=TenantPatch,
    responses={200: TenantOut},
)
def patch_tenant(principal: Principal, tenant: str) -> dict[str, Any]:
    """Disable or enable a tenant (operator): its keys stop or start working; data stays."""
    body = parse_body(TenantPatch, json_body(access_api.current_request))
    return access.set_tenant_disabled(
        repositories().registry, identifier(tenant, "tenant"), body.disabled, key_cache()
    ).to_json()
