"""API keys and tenants over HTTP, on both backends; and keys never reach the logs."""

from __future__ import annotations

import logging

import pytest
from access_world import BUILDING_A, BUILDING_B, TENANT_A, TENANT_B, Api

from chalicelib import wiring
from chalicelib.domain import timeutil
from chalicelib.domain.access import Scope
from chalicelib.domain.timeutil import format_ms, now_ms
from chalicelib.services import access


def test_new_key_is_shown_once_and_works(api: Api) -> None:
    created = api.ok("POST", "/keys", body={"scopes": ["read"], "name": "dashboard"})
    token = created["key"]
    assert token.startswith(f"rt_{created['key_id']}_")
    headers = {"Authorization": f"Bearer {token}"}
    assert api.call("GET", "/buildings", key=None, headers=headers).status_code == 200
    assert (
        api.call(
            "POST", "/buildings", key=None, headers=headers, body={"building": "x"}
        ).status_code
        == 403
    )


def test_key_list_never_shows_a_secret_or_its_hash(api: Api) -> None:
    created = api.ok("POST", "/keys", body={"scopes": ["read"]})
    response = api.call("GET", "/keys?limit=100")
    assert response.status_code == 200
    text = response.body.decode()
    secret = created["key"].split("_", 2)[2]
    assert created["key"] not in text and secret not in text
    assert access.hash_secret(secret) not in text
    listed = {k["key_id"]: k for k in response.json_body["items"]}
    assert set(listed[created["key_id"]]) == {
        "key_id",
        "tenant",
        "scopes",
        "name",
        "created_at",
        "expires_at",
        "revoked",
        "buildings",
        "sensors",
    }
    for token in api.world.tokens.values():
        assert token not in text


def test_key_list_holds_only_the_callers_tenants_keys(api: Api) -> None:
    ids = {k["key_id"] for k in api.ok("GET", "/keys?limit=100")["items"]}
    assert api.world.key_ids["admin-a"] in ids
    assert api.world.key_ids["admin-b"] not in ids and api.world.key_ids["operator"] not in ids


def test_revoked_key_is_unauthorized_at_once(api: Api) -> None:
    created = api.ok("POST", "/keys", body={"scopes": ["read"]})
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert api.call("GET", "/buildings", key=None, headers=headers).status_code == 200

    assert api.call("DELETE", f"/keys/{created['key_id']}").status_code == 204

    response = api.call("GET", "/buildings", key=None, headers=headers)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
    assert api.call("DELETE", f"/keys/{created['key_id']}").status_code == 204  # idempotent
    listed = {k["key_id"]: k for k in api.ok("GET", "/keys?limit=100")["items"]}
    assert listed[created["key_id"]]["revoked"] is True


def test_another_tenants_key_cannot_be_revoked_and_looks_missing(api: Api) -> None:
    response = api.call("DELETE", f"/keys/{api.world.key_ids['admin-b']}")
    assert response.status_code == 404
    assert api.call("GET", "/buildings", key="admin-b").status_code == 200


def test_key_expiring_in_the_past_is_unprocessable(api: Api) -> None:
    body = {"scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}
    assert api.call("POST", "/keys", body=body).status_code == 422


def test_key_stops_working_when_its_expiry_passes(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a key that expires in one minute
    expires = now_ms() + 60_000
    created = api.ok("POST", "/keys", body={"scopes": ["read"], "expires_at": format_ms(expires)})
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert created["expires_at"] == format_ms(expires)
    assert api.call("GET", "/buildings", key=None, headers=headers).status_code == 200

    # When the clock passes the expiry
    monkeypatch.setattr(timeutil.time, "time_ns", lambda: (expires + 1) * 1_000_000)

    # Then the key is unauthorized, and a key without expiry still works
    assert api.call("GET", "/buildings", key=None, headers=headers).status_code == 401
    assert api.call("GET", "/buildings", key="read-a").status_code == 200


@pytest.mark.parametrize("scopes", [["operator"], ["read", "operator"], [], ["root"]])
def test_admin_cannot_issue_operator_or_invalid_scopes(api: Api, scopes: list[str]) -> None:
    assert api.call("POST", "/keys", body={"scopes": scopes}).status_code == 422


def test_ingest_key_writes_readings_and_nothing_else(api: Api) -> None:
    body = {"building": BUILDING_A, "room": "r1", "temperature": 20.0}
    assert api.call("POST", "/readings", key="ingest-a", body=body).status_code == 201
    assert api.call("GET", "/buildings", key="ingest-a").status_code == 403
    assert api.call("GET", "/keys", key="ingest-a").status_code == 403


def test_operator_creates_lists_and_reads_tenants(api: Api) -> None:
    created = api.ok(
        "POST", "/tenants", key="operator", body={"tenant": "globex", "name": "Globex"}
    )
    assert created == {**created, "tenant": "globex", "name": "Globex", "disabled": False}
    assert (
        api.call("POST", "/tenants", key="operator", body={"tenant": "globex"}).status_code == 409
    )
    listed = {t["tenant"] for t in api.ok("GET", "/tenants?limit=100", key="operator")["items"]}
    assert {TENANT_A, TENANT_B, "globex"} <= listed
    assert api.ok("GET", "/tenants/globex", key="operator")["name"] == "Globex"
    assert api.call("GET", "/tenants/nobody", key="operator").status_code == 404


def test_disabled_tenants_keys_stop_and_its_data_stays(api: Api) -> None:
    # Given tenant A works
    assert api.call("GET", f"/buildings/{BUILDING_A}", key="read-a").status_code == 200

    # When the operator disables it
    assert api.ok("PATCH", f"/tenants/{TENANT_A}", key="operator", body={"disabled": True})[
        "disabled"
    ]

    # Then every A key is unauthorized, B is untouched
    for name in ("read-a", "admin-a", "ingest-a"):
        assert api.call("GET", "/buildings", key=name).status_code == 401
    assert api.call("GET", "/buildings", key="admin-b").status_code == 200

    # And after re-enabling, A's keys and data are back
    api.ok("PATCH", f"/tenants/{TENANT_A}", key="operator", body={"disabled": False})
    latest = api.ok("GET", f"/buildings/{BUILDING_A}/rooms/r1/latest", key="read-a")
    assert latest["temperature"] == 21.0


def test_operator_key_holds_no_tenants_data(api: Api) -> None:
    assert api.call("GET", "/buildings", key="operator").status_code == 403
    body = {"building": BUILDING_A, "room": "r1", "temperature": 20.0}
    assert api.call("POST", "/readings", key="operator", body=body).status_code == 403


def test_key_cache_lets_a_revoked_key_live_until_its_ttl_elsewhere(memory_api: Api) -> None:
    # With a cache, the revoking process forgets the key at once (the cache is per process).
    cache = access.KeyCache(ttl_s=3600)
    repos = wiring.repositories()
    token = memory_api.world.tokens["read-a"]
    access.authenticate(repos.keys, repos.registry, token, now_ms(), cache)
    access.revoke_key(repos.keys, TENANT_A, memory_api.world.key_ids["read-a"], now_ms(), cache)
    with pytest.raises(access.UnauthenticatedError):
        access.authenticate(repos.keys, repos.registry, token, now_ms(), cache)


def test_operator_key_needs_no_tenant_and_tenant_keys_cannot_be_operators(
    memory_backend: str,
) -> None:
    repos = wiring.repositories()
    with pytest.raises(access.ValidationError):
        access.issue_key(
            repos.keys, repos.registry, tenant=None, scopes=[Scope.ADMIN], name="", now_ms=now_ms()
        )
    access.create_tenant(repos.registry, "t1", "", now_ms())
    with pytest.raises(access.ValidationError):
        access.issue_key(
            repos.keys,
            repos.registry,
            tenant="t1",
            scopes=[Scope.OPERATOR],
            name="",
            now_ms=now_ms(),
        )
    with pytest.raises(access.NotFoundError):
        access.issue_key(
            repos.keys,
            repos.registry,
            tenant="ghost",
            scopes=[Scope.READ],
            name="",
            now_ms=now_ms(),
        )


def test_tokens_never_reach_the_logs(dynamo_api: Api, caplog: pytest.LogCaptureFixture) -> None:
    # Over DynamoDB, botocore logs every request body at DEBUG: the token must not be in one.
    api = dynamo_api
    caplog.set_level(logging.DEBUG)
    created = api.ok("POST", "/keys", body={"scopes": ["admin"]})
    mine = {"Authorization": f"Bearer {created['key']}"}
    api.call("GET", "/keys", key=None, headers=mine)
    api.call("GET", "/buildings/nowhere", key=None, headers=mine)
    api.call("GET", "/buildings", key=None, headers={"x-api-key": created["key"]})
    api.call("DELETE", f"/keys/{created['key_id']}")
    api.call("GET", "/buildings", key=None, headers=mine)
    api.call("GET", "/buildings", key="revoked-a")
    api.call("GET", "/buildings", key="unknown")
    # The capture sees the key's item going to the table (its id is not a secret)...
    assert created["key_id"] in caplog.text, "request bodies are not logged: this proves nothing"
    secrets = [created["key"], created["key"].split("_", 2)[2]]
    secrets += list(api.world.tokens.values())
    for secret in secrets:
        assert secret not in caplog.text


# -- a key can only grant what it holds; bound keys reach only their buildings and sensors -------


@pytest.mark.parametrize(
    ("granter", "scopes", "status"),
    [
        ("admin-a", ["ingest"], 403),  # admin does not hold ingest
        ("admin-a", ["admin", "ingest"], 403),
        ("admin-a", ["read"], 201),  # admin implies read
        ("admin-a", ["admin"], 201),
        ("admin-b", ["ingest"], 201),  # admin-b holds admin and ingest
    ],
)
def test_a_key_grants_only_the_scopes_it_holds(
    api: Api, granter: str, scopes: list[str], status: int
) -> None:
    response = api.call("POST", "/keys", key=granter, body={"scopes": scopes})
    assert response.status_code == status, response.json_body
    if status == 403:
        assert response.json_body["Code"] == "Forbidden"


def bound_key(api: Api, **binding: list[str]) -> str:
    created = api.ok("POST", "/keys", key="admin-b", body={"scopes": ["ingest"], **binding})
    assert created["buildings"] == binding.get("buildings")
    return str(created["key"])


def as_key(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def reading(building: str, sensor: str = "s1") -> dict[str, object]:
    return {"building": building, "room": "r1", "sensor_id": sensor, "temperature": 20.0}


def test_a_key_bound_to_a_building_writes_only_there(api: Api) -> None:
    # Given tenant B's ingest key bound to its building (a leaked device key, say)
    token = bound_key(api, buildings=[BUILDING_B])
    # Then it writes there, but not into another building of its tenant
    ok = api.call("POST", "/readings", key=None, headers=as_key(token), body=reading(BUILDING_B))
    assert ok.status_code == 201
    other = api.call("POST", "/readings", key=None, headers=as_key(token), body=reading("b-new"))
    assert (other.status_code, other.json_body["Code"]) == (403, "Forbidden")
    batch = {"readings": [reading(BUILDING_B, "s2"), reading("b-new", "s2")]}
    mixed = api.call("POST", "/readings", key=None, headers=as_key(token), body=batch)
    assert mixed.status_code == 207
    assert [(r["index"], r["Code"]) for r in mixed.json_body["rejected"]] == [(1, "Forbidden")]
    # And the other building was not even created
    assert api.call("GET", "/buildings/b-new", key="admin-b").status_code == 404


def test_a_key_bound_to_sensors_cannot_write_another_sensors_readings(api: Api) -> None:
    token = bound_key(api, buildings=[BUILDING_B], sensors=["boiler-1"])
    own = api.call(
        "POST", "/readings", key=None, headers=as_key(token), body=reading(BUILDING_B, "boiler-1")
    )
    assert own.status_code == 201
    # (posting another sensor's next minutes first would make its genuine readings duplicates)
    other = api.call(
        "POST", "/readings", key=None, headers=as_key(token), body=reading(BUILDING_B, "boiler-2")
    )
    assert (other.status_code, other.json_body["Code"]) == (403, "Forbidden")


def test_a_bound_admin_grants_only_keys_within_its_binding(api: Api) -> None:
    created = api.ok(
        "POST",
        "/keys",
        key="admin-b",
        body={"scopes": ["admin", "ingest"], "buildings": [BUILDING_B]},
    )
    token = created["key"]
    unbound = api.call("POST", "/keys", key=None, headers=as_key(token), body={"scopes": ["read"]})
    assert unbound.status_code == 403
    within = api.call(
        "POST",
        "/keys",
        key=None,
        headers=as_key(token),
        body={"scopes": ["read"], "buildings": [BUILDING_B]},
    )
    assert within.status_code == 201
    # And it sees only its building
    listed = api.call("GET", "/buildings", key=None, headers=as_key(token)).json_body["items"]
    assert [b["building"] for b in listed] == [BUILDING_B]


def test_a_key_cannot_be_bound_to_another_tenants_building(api: Api) -> None:
    response = api.call(
        "POST", "/keys", key="admin-b", body={"scopes": ["ingest"], "buildings": [BUILDING_A]}
    )
    assert response.status_code == 404


def test_the_future_skew_allowance_is_configurable(
    memory_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.settings import reset_settings

    monkeypatch.setenv("ROOMTEMP_MAX_FUTURE_SECONDS", "60")
    reset_settings()
    assert wiring.get_settings().max_future_seconds == 60
    ahead = dict(reading(BUILDING_B), timestamp=(now_ms() + 120_000) / 1000)
    response = memory_api.call("POST", "/readings", key="admin-b", body=ahead)
    assert response.status_code == 422
    assert "60 s in the future" in response.json_body["Message"]
