"""The authorization matrix, generated from the route table: every route x every kind of caller.

A route registered without a rule, or without a sample request here, fails the first tests; every
(route, credential) pair gets the status its rule implies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from access_world import BUILDING_A, ROOM_A, SENSOR_A, TENANT_A, Api

from app import app
from chalicelib.api.routing import ROUTE_RULES
from chalicelib.domain.access import Scope, accepted_scopes, effective_scopes

ROUTES = sorted((path, method) for path, methods in app.routes.items() for method in methods)

# A request per route that succeeds for tenant A's key with the route's scope.
SAMPLES: dict[tuple[str, str], tuple[str, Any]] = {
    ("/health", "GET"): ("", None),
    ("/readings", "POST"): ("", {"building": BUILDING_A, "room": ROOM_A, "temperature": 20.5}),
    ("/buildings/{building}/rooms/{room}/average", "GET"): ("", None),
    ("/buildings/{building}/rooms/{room}/latest", "GET"): ("", None),
    ("/buildings/{building}/rooms/{room}/readings", "GET"): ("", None),
    ("/buildings", "POST"): ("", {"building": "new-building"}),
    ("/buildings", "GET"): ("", None),
    ("/buildings/{building}", "GET"): ("", None),
    ("/buildings/{building}", "PATCH"): ("", {"name": "Renamed"}),
    ("/buildings/{building}", "DELETE"): ("?force=true", None),
    ("/buildings/{building}/rooms", "POST"): ("", {"room": "new-room"}),
    ("/buildings/{building}/rooms", "GET"): ("", None),
    ("/buildings/{building}/rooms/{room}", "GET"): ("", None),
    ("/buildings/{building}/rooms/{room}", "PATCH"): ("", {"metadata": {"floor": 2}}),
    ("/buildings/{building}/rooms/{room}", "DELETE"): ("?force=true", None),
    ("/sensors", "POST"): ("", {"sensor_id": "new-sensor"}),
    ("/sensors", "GET"): ("", None),
    ("/sensors/{sensor_id}", "GET"): ("", None),
    ("/sensors/{sensor_id}", "PATCH"): ("", {"name": "Renamed"}),
    ("/sensors/{sensor_id}", "DELETE"): ("", None),
    ("/sensors/{sensor_id}/room", "PUT"): ("", {"building": BUILDING_A, "room": ROOM_A}),
    ("/keys", "POST"): ("", {"scopes": ["read"], "name": "matrix"}),
    ("/keys", "GET"): ("", None),
    ("/keys/{key_id}", "DELETE"): ("", None),
    ("/tenants", "POST"): ("", {"tenant": "new-tenant"}),
    ("/tenants", "GET"): ("", None),
    ("/tenants/{tenant}", "GET"): ("", None),
    ("/tenants/{tenant}", "PATCH"): ("", {"disabled": False}),
    ("/buildings/{building}/average", "GET"): ("", None),
    ("/buildings/{building}/stats", "GET"): ("", None),
    ("/buildings/{building}/rooms/{room}/series", "GET"): ("", None),
    ("/buildings/{building}/rooms/{room}/stats", "GET"): ("", None),
    ("/reports", "POST"): (
        "",
        {"building": BUILDING_A, "from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"},
    ),
    ("/reports/{report_id}", "GET"): ("", None),
    ("/imports", "POST"): ("", {"filename": "day.csv"}),
    ("/imports", "GET"): ("", None),
    ("/imports/{import_id}", "GET"): ("", None),
    ("/buildings/{building}/rooms/{room}/alerts", "POST"): (
        "",
        {"metric": "co2", "condition": "above", "threshold": 1200},
    ),
    ("/buildings/{building}/rooms/{room}/alerts", "GET"): ("", None),
    ("/buildings/{building}/alerts", "POST"): ("", {"metric": "humidity", "condition": "silent"}),
    ("/buildings/{building}/alerts", "GET"): ("", None),
    ("/alerts/rules/{rule_id}", "GET"): ("", None),
    ("/alerts/rules/{rule_id}", "PATCH"): ("", {"threshold": 31}),
    ("/alerts/rules/{rule_id}", "DELETE"): ("", None),
    ("/alerts", "GET"): ("?state=active", None),
    ("/", "GET"): ("", None),
    ("/docs", "GET"): ("", None),
    ("/openapi.json", "GET"): ("", None),
    ("/static/{name}", "GET"): ("", None),
}

# Path parameters that name tenant-owned things: another tenant gets 404 for them.
OWNED_PARAMS = (
    "{building}",
    "{room}",
    "{sensor_id}",
    "{key_id}",
    "{report_id}",
    "{import_id}",
    "{rule_id}",
)
# Routes whose sample body names tenant A's building. (POST /readings is not one: building ids
# are each tenant's own, so another tenant's reading lands in its own building of that name.)
OWNED_BODIES = {("/reports", "POST")}


@dataclass(frozen=True)
class Credential:
    """How a request authenticates: headers built from a world's tokens."""

    key: str | None  # the world's token name; None: no token
    header: str = "bearer"  # bearer | x-api-key | raw (use `raw` as the Authorization header)
    raw: str = ""
    scopes: frozenset[Scope] | None = None  # None: must be rejected with 401
    other_tenant: bool = False

    def headers(self, tokens: dict[str, str]) -> dict[str, str]:
        if self.header == "raw":
            return {"Authorization": self.raw}
        if self.key is None:
            return {}
        if self.header == "x-api-key":
            return {"x-api-key": tokens[self.key]}
        return {"Authorization": f"Bearer {tokens[self.key]}"}


CREDENTIALS = {
    "no-key": Credential(None),
    "basic-scheme": Credential(None, header="raw", raw="Basic dXNlcjpwYXNz"),
    "bearer-without-key": Credential(None, header="raw", raw="Bearer"),
    "malformed-token": Credential(None, header="raw", raw="Bearer not-a-roomtemp-key"),
    "unknown-key": Credential("unknown"),
    "wrong-secret": Credential("wrong-secret-a"),
    "revoked-key": Credential("revoked-a"),
    "expired-key": Credential("expired-a"),
    "disabled-tenant": Credential("admin-off"),
    "ingest": Credential("ingest-a", scopes=frozenset({Scope.INGEST})),
    "read": Credential("read-a", scopes=frozenset({Scope.READ})),
    "admin": Credential("admin-a", scopes=frozenset({Scope.ADMIN})),
    "admin-as-x-api-key": Credential(
        "admin-a", header="x-api-key", scopes=frozenset({Scope.ADMIN})
    ),
    "operator": Credential("operator", scopes=frozenset({Scope.OPERATOR})),
    "other-tenant-admin": Credential(
        "admin-b", scopes=frozenset({Scope.ADMIN, Scope.INGEST}), other_tenant=True
    ),
}


def names_tenant_a_thing(path: str, method: str) -> bool:
    """Whether the sample request names something of tenant A (in its path or its body)."""
    return any(p in path for p in OWNED_PARAMS) or (path, method) in OWNED_BODIES


def expected_status(path: str, method: str, credential: Credential) -> str:
    """What the rule implies: '2xx', '401', '403' or '404'."""
    rule = ROUTE_RULES[(path, method)]
    if rule is None:
        return "2xx"
    if credential.scopes is None:
        return "401"
    if not set(accepted_scopes(rule)) & effective_scopes(credential.scopes):
        return "403"
    if credential.other_tenant and names_tenant_a_thing(path, method):
        return "404"
    return "2xx"


def url_of(api: Api, path: str, query: str) -> str:
    values = {
        "{building}": BUILDING_A,
        "{room}": ROOM_A,
        "{sensor_id}": SENSOR_A,
        "{key_id}": api.world.key_ids["spare-a"],
        "{tenant}": TENANT_A,
        "{report_id}": api.world.report_id,
        "{import_id}": api.world.import_id,
        "{rule_id}": api.world.rule_id,
        "{name}": "dashboard.js",
    }
    for name, value in values.items():
        path = path.replace(name, value)
    return path + query


def test_every_route_has_an_access_rule_and_every_rule_a_route() -> None:
    registered = set(ROUTES)
    assert registered - set(ROUTE_RULES) == set(), "routes without an access rule"
    assert set(ROUTE_RULES) - registered == set(), "rules without a route"


def test_every_route_has_a_sample_request_in_the_matrix() -> None:
    assert set(ROUTES) - set(SAMPLES) == set(), "add a sample request for the new route"


def test_only_health_docs_and_the_dashboard_page_are_public() -> None:
    public = {route for route, rule in ROUTE_RULES.items() if rule is None}
    assert public == {
        ("/health", "GET"),
        ("/openapi.json", "GET"),
        ("/docs", "GET"),
        ("/", "GET"),
        ("/static/{name}", "GET"),  # the dashboard page's own scripts and styles
    }


def test_only_tenants_routes_take_the_operator_scope() -> None:
    operator = {path for (path, _), rule in ROUTE_RULES.items() if rule is Scope.OPERATOR}
    assert operator == {"/tenants", "/tenants/{tenant}"}


MATRIX = [
    pytest.param(path, method, name, id=f"{method} {path} | {name}")
    for path, method in ROUTES
    for name in CREDENTIALS
]


@pytest.mark.parametrize(("path", "method", "credential_name"), MATRIX)
def test_route_answers_each_credential_as_its_rule_says(
    memory_api: Api, path: str, method: str, credential_name: str
) -> None:
    # Given a route, its sample request and a kind of caller
    credential = CREDENTIALS[credential_name]
    query, body = SAMPLES[(path, method)]
    headers = credential.headers(memory_api.world.tokens)

    # When the caller sends the request
    response = memory_api.call(
        method, url_of(memory_api, path, query), key=None, body=body, headers=headers
    )

    # Then the status is the one the route's rule implies
    expected = expected_status(path, method, credential)
    detail = (response.status_code, response.body[:300])
    if expected == "2xx":
        assert 200 <= response.status_code < 300, detail
    else:
        assert response.status_code == int(expected), detail
        assert set(response.json_body) >= {"Code", "Message"}
    if expected == "401":
        assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")
    for token in memory_api.world.tokens.values():
        assert token not in response.body.decode()


# A smaller matrix over the DynamoDB adapters (moto): one route per resource and scope.
DYNAMO_ROUTES = [
    ("/readings", "POST"),
    ("/buildings/{building}/rooms/{room}/average", "GET"),
    ("/buildings/{building}", "DELETE"),
    ("/sensors/{sensor_id}", "GET"),
    ("/keys/{key_id}", "DELETE"),
    ("/tenants", "GET"),
]
DYNAMO_CREDENTIALS = [
    "no-key",
    "unknown-key",
    "revoked-key",
    "expired-key",
    "disabled-tenant",
    "read",
    "admin",
    "operator",
    "other-tenant-admin",
]


@pytest.mark.parametrize(
    ("path", "method", "credential_name"),
    [
        pytest.param(path, method, name, id=f"{method} {path} | {name}")
        for path, method in DYNAMO_ROUTES
        for name in DYNAMO_CREDENTIALS
    ],
)
def test_route_answers_each_credential_as_its_rule_says_over_dynamodb(
    dynamo_api: Api, path: str, method: str, credential_name: str
) -> None:
    credential = CREDENTIALS[credential_name]
    query, body = SAMPLES[(path, method)]
    response = dynamo_api.call(
        method,
        url_of(dynamo_api, path, query),
        key=None,
        body=body,
        headers=credential.headers(dynamo_api.world.tokens),
    )
    expected = expected_status(path, method, credential)
    detail = (response.status_code, response.body[:300])
    if expected == "2xx":
        assert 200 <= response.status_code < 300, detail
    else:
        assert response.status_code == int(expected), detail
