"""Access routes: the tenant's API keys (admin) and the platform's tenants (operator)."""

from __future__ import annotations

from chalice.app import Blueprint

from chalicelib import wiring
from chalicelib.api.bodies import KeyIn, TenantIn, TenantPatch
from chalicelib.api.http import identifier, json_body, parse_body, parse_query
from chalicelib.api.queries import PageQuery
from chalicelib.api.responses import KeyCreated, KeyOut, KeysPage, TenantOut, TenantsPage
from chalicelib.api.routing import Reply, route
from chalicelib.api.scope import next_cursor, owner, page_after
from chalicelib.domain.access import Principal, Scope
from chalicelib.domain.timeutil import now_ms, parse_iso
from chalicelib.services import access

access_api = Blueprint(__name__)


def _page(kind: str) -> tuple[int, str | None]:
    asked = parse_query(PageQuery, access_api.current_request)
    return asked.limit, page_after(asked.cursor, kind)


@route(
    access_api,
    "/keys",
    "POST",
    Scope.ADMIN,
    body=KeyIn,
    responses={201: KeyCreated},
    errors=(404,),  # a bound building that is not the tenant's
)
def post_key(principal: Principal) -> Reply:
    """Issue a key for the caller's tenant; the secret is in this answer only."""
    body = parse_body(KeyIn, json_body(access_api.current_request))
    repos = wiring.repositories()
    expires = None if body.expires_at is None else parse_iso(body.expires_at, "expires_at")
    key, token = access.issue_key(
        repos.keys,
        repos.registry,
        tenant=owner(principal),
        scopes=body.scopes,
        name=body.name,
        now_ms=now_ms(),
        expires_ms=expires,
        buildings=body.buildings,
        sensors=body.sensors,
        granted_by=principal,
    )
    return Reply(201, KeyCreated.created(key, token))


@route(access_api, "/keys", "GET", Scope.ADMIN, query=PageQuery, responses={200: KeysPage})
def list_keys(principal: Principal) -> KeysPage:
    """The tenant's keys (never their secrets)."""
    limit, after = _page("keys")
    page = access.list_keys(wiring.repositories().keys, owner(principal), limit, after)
    return KeysPage(items=[KeyOut.of(k) for k in page.items], next_cursor=next_cursor(page, "keys"))


@route(access_api, "/keys/{key_id}", "DELETE", Scope.ADMIN, responses={204: "Revoked"})
def delete_key(principal: Principal, key_id: str) -> Reply:
    """Revoke one of the tenant's keys."""
    access.revoke_key(
        wiring.repositories().keys,
        owner(principal),
        identifier(key_id, "key_id"),
        now_ms(),
        wiring.key_cache(),
    )
    return Reply(204)


@route(
    access_api,
    "/tenants",
    "POST",
    Scope.OPERATOR,
    body=TenantIn,
    responses={201: TenantOut},
    errors=(409,),
)
def post_tenant(principal: Principal) -> Reply:
    """Create a tenant (operator)."""
    body = parse_body(TenantIn, json_body(access_api.current_request))
    created = access.create_tenant(
        wiring.repositories().registry, body.tenant, body.name or "", now_ms()
    )
    return Reply(201, TenantOut.of(created))


@route(access_api, "/tenants", "GET", Scope.OPERATOR, query=PageQuery, responses={200: TenantsPage})
def list_tenants(principal: Principal) -> TenantsPage:
    """Every tenant (operator)."""
    limit, after = _page("tenants")
    page = access.list_tenants(wiring.repositories().registry, limit, after)
    return TenantsPage(
        items=[TenantOut.of(t) for t in page.items], next_cursor=next_cursor(page, "tenants")
    )


@route(access_api, "/tenants/{tenant}", "GET", Scope.OPERATOR, responses={200: TenantOut})
def get_tenant(principal: Principal, tenant: str) -> TenantOut:
    """One tenant (operator)."""
    found = access.get_tenant(wiring.repositories().registry, identifier(tenant, "tenant"))
    return TenantOut.of(found)


@route(
    access_api,
    "/tenants/{tenant}",
    "PATCH",
    Scope.OPERATOR,
    body=TenantPatch,
    responses={200: TenantOut},
)
def patch_tenant(principal: Principal, tenant: str) -> TenantOut:
    """Disable or enable a tenant (operator): its keys stop or start working; data stays."""
    body = parse_body(TenantPatch, json_body(access_api.current_request))
    updated = access.set_tenant_disabled(
        wiring.repositories().registry,
        identifier(tenant, "tenant"),
        body.disabled,
        wiring.key_cache(),
    )
    return TenantOut.of(updated)
