"""Fixtures of the reliability suite: fake AWS, a moto table behind the app, keys, a test client."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest


def _all_items_sorted_once(self: Any) -> list[Any]:
    """moto's Table.all_items, with each item's sort key computed once instead of per comparison.

    moto answers every main-table Query and Scan by sorting the whole table with Python-level
    DynamoType comparisons (O(n log n) `cast_value` calls); at 100,000 items that is seconds per
    Query. The order is the same; only the emulator gets faster.
    """
    items = [item for hash_set in self.items.values() for item in hash_set.values()]

    def key(item: Any) -> Any:
        hash_key = item.hash_key.cast_value
        return (hash_key, item.range_key.cast_value) if item.range_key else hash_key

    return sorted(items, key=key)


def fast_moto() -> None:
    """Queries read their partition only (the embedded emulator's patch, infra/emulator.py),
    scans sort once: the emulator's speed, not the code under test, set these runs' length.
    Undone at the end of the test."""
    from infra.emulator import patch_moto

    _undo.append(patch_moto())


_undo: list[Any] = []


@pytest.fixture(autouse=True)
def _unpatch_moto() -> Iterator[None]:
    yield
    while _undo:
        _undo.pop()()


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh moto table (from infra/table.json) that the app's wiring points at; its name."""
    from moto import mock_aws
    from moto.dynamodb.models.table import Table

    from chalicelib import wiring
    from infra.tables import create_table

    # Our table always has a range key, so moto's hash-only branch is never needed.
    monkeypatch.setattr(Table, "all_items", _all_items_sorted_once)
    fast_moto()

    name = f"roomtemp-rel-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("ROOMTEMP_TABLE_NAME", name)
    with mock_aws():
        wiring.reset()
        create_table(wiring.aws_client("dynamodb"), name)
        yield name
    wiring.reset()


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The retry policy's sleeps become 0 (retries still happen, just fast)."""
    from chalicelib.aws.retry import RetryPolicy

    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt: 0.0)


class Api:
    """chalice.test.Client with a key; every call of the suite goes through here."""

    def __init__(self, client: Any, keys: dict[str, str]) -> None:
        self.client = client
        self.keys = keys

    def request(
        self, method: str, path: str, *, key: str = "admin", body: Any = None, raw: bytes = b""
    ) -> tuple[int, dict[str, str], Any]:
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {self.keys[key]}"
        data = raw or (b"" if body is None else json.dumps(body).encode())
        response = self.client.http.request(method, path, headers=headers, body=data)
        parsed = json.loads(response.body) if response.body else None
        return response.status_code, dict(response.headers), parsed


@pytest.fixture
def api(table: str) -> Iterator[Api]:
    """The app behind chalice.test.Client, on the moto table, with admin/read/ingest keys."""
    from chalice.test import Client

    from app import app
    from chalicelib.domain.access import Scope
    from infra.cli.keys import bootstrap_key

    keys = {
        "admin": bootstrap_key("rel", [Scope.ADMIN, Scope.READ, Scope.INGEST], "admin")["key"],
        "ingest": bootstrap_key("rel", [Scope.INGEST], "device")["key"],
        "read": bootstrap_key("rel", [Scope.READ], "dashboard")["key"],
    }
    with Client(app) as client:
        yield Api(client, keys)


@dataclass
class LiveStack:
    """`chalice local` against moto's server, both on free 127.0.0.1 ports, with keys."""

    endpoint: str
    base_url: str
    keys: dict[str, str]  # "admin" (admin+read+ingest of tenant `tenant`), "operator"
    tenant: str
    table: str


@pytest.fixture(scope="module")
def live_stack() -> Iterator[LiveStack]:
    """A running local server for a whole module; moto's server in its own process.

    Its own process: `mock_aws` in other tests of this worker resets in-process moto backends.
    """
    from chalicelib import wiring
    from chalicelib.domain.access import Scope
    from infra.cli.keys import bootstrap_key
    from infra.local import (
        LOCALHOST,
        aws_env,
        bootstrap,
        free_port,
        start_api,
        start_emulator_process,
        stop_process,
    )

    # `chalice local` applies the stage's ROOMTEMP_TABLE_NAME: the table carries that name.
    table, tenant = "roomtemp", "fuzz"
    port = free_port()
    emulator = start_emulator_process(port)
    api = None
    try:
        endpoint = f"http://{LOCALHOST}:{port}"
        bootstrap(endpoint, table)
        env = aws_env(endpoint, table)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AWS_ENDPOINT_URL", endpoint)
            patch.setenv("ROOMTEMP_TABLE_NAME", table)
            wiring.reset()
            scopes = [Scope.ADMIN, Scope.READ, Scope.INGEST]
            keys = {
                "admin": bootstrap_key(tenant, scopes, "fuzz")["key"],
                "operator": bootstrap_key(None, [Scope.OPERATOR], "fuzz operator")["key"],
            }
            wiring.reset()
        api_port = free_port()
        api = start_api(api_port, env, quiet=True)
        yield LiveStack(endpoint, f"http://{LOCALHOST}:{api_port}", keys, tenant, table)
    finally:
        if api is not None:
            stop_process(api)
        stop_process(emulator)
