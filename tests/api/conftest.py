"""The API under chalice.test.Client, backed by the DynamoDB adapter on a moto table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from chalice.test import Client

from app import app
from chalicelib import wiring
from chalicelib.domain.access import Scope
from chalicelib.services import registry
from chalicelib.settings import get_settings
from infra.cli.keys import bootstrap_key


class Api:
    """Every API call of the tests goes through here (request headers, e.g. auth, live here)."""

    def __init__(self, client: Client, key: str) -> None:
        self._client = client
        self.key = key  # an admin + read + ingest key of tenant "t1", sent with every request
        self.headers: dict[str, str] = {}  # the last response's headers

    def _request(
        self, method: str, path: str, body: bytes, headers: dict[str, str] | None
    ) -> tuple[int, Any]:
        sent = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.key}",
            **(headers or {}),
        }
        response = self._client.http.request(method, path, headers=sent, body=body)
        self.headers = dict(response.headers)
        return response.status_code, json.loads(response.body) if response.body else None

    def post(
        self,
        path: str,
        json: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """POST `json` (encoded here) or raw `body` bytes; (status, decoded JSON body)."""
        raw = body if body is not None else _dumps(json)
        return self._request("POST", path, raw, headers)

    def get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """GET with query `params`; (status, decoded JSON body)."""
        query = f"?{urlencode(params)}" if params else ""
        return self._request("GET", path + query, b"", headers)


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.fixture
def api(dynamodb: Any, table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The app on a fresh moto table named `table_name`."""
    monkeypatch.setenv("ROOMTEMP_TABLE_NAME", table_name)
    wiring.reset()
    # chalice.test.Client overlays the stage's environment (ROOMTEMP_TABLE_NAME=roomtemp-dev) on
    # every request; settings read now, from the test's environment, stay cached for the test.
    assert get_settings().table_name == table_name
    key = bootstrap_key("t1", [Scope.ADMIN, Scope.READ, Scope.INGEST], "api tests")["key"]
    # The rooms the route tests read before (or without) writing are registered up front.
    repos = wiring.repositories()
    registry.create_building(repos.registry, "t1", "hq", name=None, metadata=None, now_ms=0)
    for room in ("r101", "r102"):
        registry.create_room(repos.registry, "t1", "hq", room, name=None, metadata=None, now_ms=0)
    with Client(app) as client:
        yield Api(client, key)
