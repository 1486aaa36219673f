"""`keys` and `tenants` commands: bootstrap and manage access by writing to the table directly.

They use the same use cases as the routes (chalicelib.services.access), against the table named by
ROOMTEMP_TABLE_NAME at the endpoint the AWS SDK variables select (AWS, LocalStack, emulator).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from chalicelib.api.responses import KeyCreated, KeyOut, TenantOut
from chalicelib.domain.access import Scope
from chalicelib.domain.timeutil import now_ms
from chalicelib.services import access
from chalicelib.wiring import repositories


def register(subparsers: Any) -> None:
    """Add the `keys` and `tenants` commands."""
    keys = subparsers.add_parser("keys", help="API keys").add_subparsers(
        dest="action", required=True
    )
    create = keys.add_parser("create", help="issue a key; prints the secret once")
    owner = create.add_mutually_exclusive_group(required=True)
    owner.add_argument("--tenant", help="the key's tenant (created if missing)")
    owner.add_argument("--operator", action="store_true", help="a platform operator key")
    create.add_argument(
        "--scope",
        action="append",
        choices=[s.value for s in Scope if s is not Scope.OPERATOR],
        help="ingest, read or admin (repeatable; default admin)",
    )
    create.add_argument("--name", default="cli")
    create.add_argument("--expires-days", type=float, default=None)
    create.set_defaults(func=create_key)

    listing = keys.add_parser("list", help="a tenant's keys (no secrets)")
    listing.add_argument("--tenant", required=True)
    listing.set_defaults(func=list_keys)

    revoke = keys.add_parser("revoke", help="revoke a key")
    revoke.add_argument("--tenant", required=True)
    revoke.add_argument("key_id")
    revoke.set_defaults(func=revoke_key)

    tenants = subparsers.add_parser("tenants", help="tenants").add_subparsers(
        dest="action", required=True
    )
    tenant_create = tenants.add_parser("create", help="create a tenant")
    tenant_create.add_argument("tenant")
    tenant_create.add_argument("--name", default="")
    tenant_create.set_defaults(func=create_tenant)


def bootstrap_key(
    tenant: str | None, scopes: list[Scope], name: str, expires_ms: int | None = None
) -> dict[str, Any]:
    """Issue a key (creating the tenant if needed); the key's JSON with its secret under `key`."""
    repos = repositories()
    now = now_ms()
    if tenant is not None:
        access.ensure_tenant(repos.registry, tenant, now)
    key, token = access.issue_key(
        repos.keys,
        repos.registry,
        tenant=tenant,
        scopes=scopes,
        name=name,
        now_ms=now,
        expires_ms=expires_ms,
    )
    return KeyCreated.created(key, token).model_dump(mode="json")


def create_key(args: argparse.Namespace) -> int:
    scopes = [Scope.OPERATOR] if args.operator else [Scope(s) for s in args.scope or ["admin"]]
    expires = None
    if args.expires_days is not None:
        expires = now_ms() + int(args.expires_days * 86_400_000)
    print(json.dumps(bootstrap_key(args.tenant, scopes, args.name, expires), indent=2))
    return 0


def list_keys(args: argparse.Namespace) -> int:
    after = None
    while True:
        page = access.list_keys(repositories().keys, args.tenant, 100, after)
        for key in page.items:
            print(json.dumps(KeyOut.of(key).model_dump(mode="json")))
        if page.next_after is None:
            return 0
        after = page.next_after


def revoke_key(args: argparse.Namespace) -> int:
    access.revoke_key(repositories().keys, args.tenant, args.key_id, now_ms())
    print(f"revoked {args.key_id}")
    return 0


def create_tenant(args: argparse.Namespace) -> int:
    tenant = access.create_tenant(repositories().registry, args.tenant, args.name, now_ms())
    print(json.dumps(TenantOut.of(tenant).model_dump(mode="json"), indent=2))
    return 0
