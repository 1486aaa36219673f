"""The access tests' seeded two-tenant world and a JSON client (the fixtures are in conftest).

Tenant A ("tenant-a") owns building "a-hq" with room "r1", sensor "s-a1" in that room and
readings; tenant B ("tenant-b") owns building "b-hq". Keys: every scope of A, B's admin, an
operator, and the broken kinds (revoked, expired, disabled tenant).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chalice.test import Client

from chalicelib import wiring
from chalicelib.domain.access import Scope
from chalicelib.domain.inputs import parse_readings
from chalicelib.domain.reports import ReportSpec
from chalicelib.domain.timeutil import now_ms
from chalicelib.services import access, alerts, registry, reports, uploads
from chalicelib.services import readings as services

# chalice.test.Client runs each request with the 'dev' stage's environment, which names this table.
TABLE = "roomtemp-dev"
TENANT_A, TENANT_B, TENANT_OFF = "tenant-a", "tenant-b", "tenant-off"
BUILDING_A, ROOM_A, SENSOR_A = "a-hq", "r1", "s-a1"
BUILDING_B, ROOM_B = "b-hq", "b1"


@dataclass
class World:
    """What the seeded world holds: tokens by name and the key ids behind them."""

    tokens: dict[str, str] = field(default_factory=dict)
    key_ids: dict[str, str] = field(default_factory=dict)
    report_id: str = ""
    import_id: str = ""
    rule_id: str = ""

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


@dataclass
class Api:
    """A chalice.test.Client with JSON helpers."""

    client: Client
    world: World

    def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = "admin-a",
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        sent = {"Content-Type": "application/json"}
        if key is not None:
            sent.update(self.world.bearer(key))
        sent.update(headers or {})
        payload = None if body is None else json.dumps(body)
        return self.client.http.request(method, path, headers=sent, body=payload)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer of a call that must succeed (2xx)."""
        response = self.call(method, path, **kwargs)
        assert 200 <= response.status_code < 300, (response.status_code, response.body)
        return response.json_body


def seed_world() -> World:
    """Create the two tenants, their registry, readings and keys through the use cases."""
    repos = wiring.repositories()
    now = now_ms()
    world = World()

    def key(name: str, tenant: str | None, scopes: list[Scope], **kwargs: Any) -> None:
        issued, token = access.issue_key(
            repos.keys,
            repos.registry,
            tenant=tenant,
            scopes=scopes,
            name=name,
            now_ms=now,
            **kwargs,
        )
        world.tokens[name] = token
        world.key_ids[name] = issued.key_id

    for tenant in (TENANT_A, TENANT_B, TENANT_OFF):
        access.create_tenant(repos.registry, tenant, tenant, now)
    registry.create_building(
        repos.registry, TENANT_A, BUILDING_A, name="HQ", metadata={"floor": 1}, now_ms=now
    )
    registry.create_room(
        repos.registry, TENANT_A, BUILDING_A, ROOM_A, name=None, metadata=None, now_ms=now
    )
    registry.create_sensor(
        repos.registry,
        TENANT_A,
        SENSOR_A,
        name=None,
        metadata=None,
        building=BUILDING_A,
        room=ROOM_A,
        now_ms=now,
    )
    registry.create_building(
        repos.registry, TENANT_B, BUILDING_B, name=None, metadata=None, now_ms=now
    )
    registry.create_room(
        repos.registry, TENANT_B, BUILDING_B, ROOM_B, name=None, metadata=None, now_ms=now
    )
    readings = {
        "readings": [
            {
                "building": BUILDING_A,
                "room": ROOM_A,
                "sensor_id": SENSOR_A,
                "temperature": t,
                "timestamp": (now - 60_000 * i) / 1000,
            }
            for i, t in enumerate([21.0, 22.0, 23.0])
        ]
    }
    services.record_readings(repos, TENANT_A, parse_readings(readings, now, 300_000), now_ms=now)
    services.record_readings(
        repos,
        TENANT_B,
        parse_readings({"building": BUILDING_B, "room": ROOM_B, "temperature": 18.0}, now, 300_000),
        now_ms=now,
    )

    spec = ReportSpec(building=BUILDING_A, from_ms=now - 3_600_000, to_ms=now)
    world.report_id = reports.request_report(
        wiring.report_repository(), wiring.reports_queue(), spec, tenant=TENANT_A, now_ms=now
    ).id
    world.import_id = uploads.create_import(
        wiring.object_store(),
        TENANT_A,
        "day.csv",
        key_id="seed",
        now_ms=now,
        nonce="0" * 32,
        seconds=900,
        max_bytes=1024,
    ).ticket.import_id

    world.rule_id = alerts.create_rule(
        wiring.alert_repository(),
        repos.registry,
        TENANT_A,
        BUILDING_A,
        ROOM_A,
        {"metric": "temperature", "condition": "above", "threshold": 30},
        now_ms=now,
        secret="alpha-secret-key",
        allow_local=False,
    ).rule_id

    key("ingest-a", TENANT_A, [Scope.INGEST])
    key("read-a", TENANT_A, [Scope.READ])
    key("admin-a", TENANT_A, [Scope.ADMIN])
    key("spare-a", TENANT_A, [Scope.READ])  # the one the matrix's DELETE /keys/{key_id} revokes
    key("admin-b", TENANT_B, [Scope.ADMIN, Scope.INGEST])
    key("operator", None, [Scope.OPERATOR])
    key("revoked-a", TENANT_A, [Scope.ADMIN])
    access.revoke_key(repos.keys, TENANT_A, world.key_ids["revoked-a"], now)
    key("expired-a", TENANT_A, [Scope.ADMIN], expires_ms=now + 60_000)
    expired = repos.keys.get_key(world.key_ids["expired-a"])
    assert expired is not None
    repos.keys.save_key(expired.model_copy(update={"expires_ms": now - 1}))
    key("admin-off", TENANT_OFF, [Scope.ADMIN, Scope.INGEST])
    access.set_tenant_disabled(repos.registry, TENANT_OFF, True)
    # A well-formed token with a real key id but the wrong secret.
    world.tokens["wrong-secret-a"] = f"rt_{world.key_ids['admin-a']}_{'A' * 32}"
    world.tokens["unknown"] = f"rt_{'0' * 16}_{'A' * 32}"
    return world


def _app() -> Any:
    from app import app

    return app
