"""GET /openapi.json: a valid OpenAPI 3.1 document of exactly the app's routes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client
from openapi_spec_validator import validate
from pydantic import BaseModel

from app import app
from chalicelib import wiring
from chalicelib.api import responses
from chalicelib.api.openapi import app_routes, base_path, build_document
from chalicelib.api.routing import ROUTE_DOCS, ROUTE_RULES
from chalicelib.domain.access import Scope
from infra.cli.keys import bootstrap_key
from tests.fakes import in_memory_adapters

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture
def client() -> Iterator[Client]:
    wiring.override(**in_memory_adapters())
    try:
        with Client(app) as test_client:
            yield test_client
    finally:
        wiring.reset()


@pytest.fixture
def document(client: Client) -> dict[str, Any]:
    response = client.http.get("/openapi.json")
    assert response.status_code == 200
    return dict(json.loads(response.body))


def chalice_routes() -> set[tuple[str, str]]:
    return {(path, method.lower()) for path, method in app_routes(app.routes)}


def documented_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, m) for path, ops in document["paths"].items() for m in ops if m in METHODS}


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_every_chalice_route_is_documented_and_nothing_else(document: dict[str, Any]) -> None:
    assert documented_routes(document) == chalice_routes()
    # and each was registered through route(), so it carries its rule and its docs
    assert {(p, m.lower()) for p, m in ROUTE_DOCS} == chalice_routes()
    assert all(
        op["tags"] != ["undocumented"] for ops in document["paths"].values() for op in ops.values()
    )


def test_every_route_has_a_rule_and_protected_routes_need_a_key(document: dict[str, Any]) -> None:
    for path, method in chalice_routes():
        operation = document["paths"][path][method]
        scope = ROUTE_RULES[(path, method.upper())]
        if scope is None:
            assert operation["security"] == [], (path, method)
        else:
            assert operation["security"] == [{"bearer": []}, {"apiKey": []}], (path, method)
            assert operation["x-required-scope"] == (
                scope.value if isinstance(scope, Scope) else [s.value for s in scope]
            )
            assert {"401", "403"} <= set(operation["responses"]), (path, method)


def test_every_json_answer_has_a_schema(document: dict[str, Any]) -> None:
    # Every success of every route documents its body (HTML pages and 204s have none)
    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                content = answer.get("content", {})
                if status == "204" or "text/html" in content or path == "/static/{name}":
                    continue
                if path == "/openapi.json":
                    continue  # the document itself: an OpenAPI object
                schema = content.get("application/json", {}).get("schema")
                if not schema:
                    missing.append(f"{method.upper()} {path} {status}")
    assert missing == []


def test_error_answers_use_the_error_body_schema(document: dict[str, Any]) -> None:
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for ops in document["paths"].values():
        for operation in ops.values():
            for status, answer in operation["responses"].items():
                if int(status) >= 400 and "content" in answer:
                    assert answer["content"]["application/json"]["schema"] == error_ref


def test_request_bodies_come_from_the_pydantic_models(document: dict[str, Any]) -> None:
    post_readings = document["paths"]["/readings"]["post"]["requestBody"]["content"]
    schema = post_readings["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/ReadingIn"} in schema["anyOf"]
    reading_in = document["components"]["schemas"]["ReadingIn"]
    assert reading_in["additionalProperties"] is False
    assert set(reading_in["properties"]) >= {"building", "room", "temperature", "timestamp"}
    assert "examples" in post_readings["application/json"]
    building = document["paths"]["/buildings"]["post"]["requestBody"]["content"]
    assert building["application/json"]["schema"] == {"$ref": "#/components/schemas/BuildingIn"}


def test_path_and_query_parameters_are_listed(document: dict[str, Any]) -> None:
    operation = document["paths"]["/buildings/{building}/rooms/{room}/readings"]["get"]
    by_place = {(p["in"], p["name"]) for p in operation["parameters"]}
    assert {("path", "building"), ("path", "room"), ("query", "cursor")} <= by_place
    assert ("query", "limit") in by_place


def test_servers_follow_the_stage_prefix() -> None:
    assert base_path({"path": "/api/openapi.json"}, "/openapi.json") == "/api"
    assert base_path({"path": "/openapi.json"}, "/openapi.json") == "/"
    assert base_path(None, "/openapi.json") == "/"


def test_generation_fails_loudly_for_two_models_of_one_name() -> None:
    class ReadingOut(BaseModel):  # another model with a taken name
        other: int

    from chalicelib.api.routedoc import doc_of

    doc = doc_of(lambda: None, "/x", "GET", None, "t", responses={200: ReadingOut})
    real = dict(ROUTE_DOCS)
    try:
        ROUTE_DOCS[("/x", "GET")] = doc
        with pytest.raises(ValueError, match="ReadingOut"):
            build_document([("/x", "GET"), *app_routes(app.routes)])
    finally:
        ROUTE_DOCS.clear()
        ROUTE_DOCS.update(real)


def test_answers_match_their_documented_models(client: Client) -> None:
    # Given a tenant with a reading
    admin = bootstrap_key("acme", [Scope.ADMIN, Scope.INGEST], "test")["key"]
    headers = {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"}
    posted = client.http.post(
        "/readings",
        headers=headers,
        body=json.dumps({"building": "hq", "room": "r1", "temperature": 21.0}),
    )
    assert posted.status_code == 201
    room = "/buildings/hq/rooms/r1"
    expected: list[tuple[str, type[BaseModel]]] = [
        ("/health", responses.Health),
        ("/buildings", responses.BuildingsPage),
        ("/buildings/hq/rooms", responses.RoomsPage),
        (room + "/latest", responses.ReadingOut),
        (room + "/average", responses.WindowAverage),
        (room + "/readings", responses.ReadingsPage),
        ("/keys", responses.KeysPage),
        (room + "/series", responses.Series),
        (room + "/stats?low=18&high=24", responses.RoomStats),
        ("/buildings/hq/stats", responses.BuildingStats),
        ("/buildings/hq/average", responses.BuildingAverage),
        ("/buildings/missing", responses.ErrorBody),
    ]
    responses.IngestResult.model_validate(json.loads(posted.body))
    for path, model in expected:
        # When each is read, Then its answer fits its documented model (extra keys forbidden)
        answer = client.http.get(path, headers=headers)
        if model is not responses.ErrorBody:
            assert answer.status_code == 200, (path, answer.body)
        model.model_validate(json.loads(answer.body))
