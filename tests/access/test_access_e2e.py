"""Tenant isolation over real HTTP: `chalice local` against the emulator, keys from the CLI code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.domain.access import Scope
from infra.cli.keys import bootstrap_key
from infra.local import ROOT, Emulator, aws_env, bootstrap, free_port, start_api, stop_process

pytestmark = pytest.mark.e2e


@dataclass
class Stack:
    """The running stack: API URL, the environment that reaches its table, keys, server log."""

    api: str
    env: dict[str, str]
    keys: dict[str, str]
    log_path: Path

    def call(self, method: str, path: str, key: str | None, body: Any = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {self.keys.get(key, key)}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.api + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        return status, json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Emulator + table + `chalice local`, on free ports; tenants acme and globex with keys."""
    saved = dict(os.environ)
    emulator = Emulator(free_port()).start()
    process = None
    try:
        table = f"access-e2e-{uuid.uuid4().hex[:8]}"
        env = aws_env(emulator.endpoint, table)
        env["ROOMTEMP_AUTH_CACHE_SECONDS"] = "0"
        os.environ.update(env)
        wiring.reset()
        bootstrap(emulator.endpoint, table)
        keys = {
            "acme-admin": bootstrap_key("acme", [Scope.ADMIN], "e2e")["key"],
            "acme-ingest": bootstrap_key("acme", [Scope.INGEST], "e2e")["key"],
            "globex-admin": bootstrap_key("globex", [Scope.ADMIN, Scope.INGEST], "e2e")["key"],
        }
        log_path = tmp_path_factory.mktemp("access-e2e") / "chalice-local.log"
        port = free_port()
        process = start_api(port, env, log_path=log_path)
        yield Stack(f"http://127.0.0.1:{port}", env, keys, log_path)
    finally:
        if process is not None:
            stop_process(process)
        emulator.stop()
        os.environ.clear()
        os.environ.update(saved)
        wiring.reset()


@pytest.fixture(scope="module")
def acme_data(stack: Stack) -> Stack:
    """acme's building hq/r1 with a reading, created by a device writing into it."""
    body = {"building": "acme-hq", "room": "r1", "sensor_id": "s1", "temperature": 21.5}
    assert stack.call("POST", "/readings", "acme-ingest", body)[0] == 201
    return stack


def test_health_needs_no_key(stack: Stack) -> None:
    status, body = stack.call("GET", "/health", None)
    assert (status, body["status"]) == (200, "ok")


def test_a_request_without_key_is_unauthorized(stack: Stack) -> None:
    status, body = stack.call("GET", "/buildings", None)
    assert status == 401 and body["Code"] == "Unauthorized"


def test_owner_reads_its_own_data(acme_data: Stack) -> None:
    status, latest = acme_data.call("GET", "/buildings/acme-hq/rooms/r1/latest", "acme-admin")
    assert status == 200 and latest["temperature"] == 21.5


@pytest.mark.parametrize(
    "path",
    [
        "/buildings/acme-hq",
        "/buildings/acme-hq/rooms",
        "/buildings/acme-hq/rooms/r1",
        "/buildings/acme-hq/rooms/r1/latest",
        "/buildings/acme-hq/rooms/r1/average",
        "/buildings/acme-hq/rooms/r1/readings",
    ],
)
def test_another_tenant_cannot_read_the_owners_data(acme_data: Stack, path: str) -> None:
    status, body = acme_data.call("GET", path, "globex-admin")
    assert status == 404 and body["Code"] == "NotFound"


def test_another_tenants_lists_do_not_show_the_owners_things(acme_data: Stack) -> None:
    for path in ("/buildings", "/sensors", "/keys"):
        status, body = acme_data.call("GET", path, "globex-admin")
        assert status == 200
        assert "acme" not in json.dumps(body["items"])
    status, body = acme_data.call("GET", "/buildings", "acme-admin")
    assert [b["building"] for b in body["items"]] == ["acme-hq"]


def test_another_tenant_cannot_write_into_the_owners_building(acme_data: Stack) -> None:
    # Given globex writes readings naming acme's building id: they land in globex's own "acme-hq"
    body = {"building": "acme-hq", "room": "r1", "temperature": 99.0}
    assert acme_data.call("POST", "/readings", "globex-admin", body)[0] == 201
    body = {"building": "acme-hq", "room": "new-room", "temperature": 99.0}
    assert acme_data.call("POST", "/readings", "globex-admin", body)[0] == 201
    assert acme_data.call("DELETE", "/buildings/acme-hq?force=true", "globex-admin")[0] == 204
    # Then acme's building, room and readings are untouched, and acme sees no new room
    status, latest = acme_data.call("GET", "/buildings/acme-hq/rooms/r1/latest", "acme-admin")
    assert status == 200 and latest["temperature"] == 21.5
    assert acme_data.call("GET", "/buildings/acme-hq/rooms/new-room", "acme-admin")[0] == 404
    status, rooms = acme_data.call("GET", "/buildings/acme-hq/rooms", "acme-admin")
    assert [r["room"] for r in rooms["items"]] == ["r1"]
    # And globex's deletion removed only its own namesake
    assert acme_data.call("GET", "/buildings/acme-hq", "globex-admin")[0] == 404


def test_revoked_key_is_refused_by_the_server(stack: Stack) -> None:
    status, created = stack.call("POST", "/keys", "acme-admin", {"scopes": ["read"]})
    assert status == 201
    assert stack.call("GET", "/buildings", created["key"])[0] == 200
    assert stack.call("DELETE", f"/keys/{created['key_id']}", "acme-admin")[0] == 204
    assert stack.call("GET", "/buildings", created["key"])[0] == 401


def test_cli_creates_a_working_admin_key(stack: Stack) -> None:
    # Given the CLI, run as an operator would, against the stack's table
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.cli",
            "keys",
            "create",
            "--tenant",
            "initech",
            "--scope",
            "admin",
        ],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    created = json.loads(result.stdout)
    assert created["tenant"] == "initech" and created["scopes"] == ["admin"]

    # Then its key administers the new tenant over HTTP
    key = created["key"]
    assert stack.call("POST", "/buildings", key, {"building": "initech-hq"})[0] == 201
    status, body = stack.call("GET", "/buildings", key)
    assert status == 200
    assert [b["building"] for b in body["items"]] == ["initech-hq"]
    status, keys = stack.call("GET", "/keys", key)
    assert status == 200
    assert key not in json.dumps(keys)


def test_server_log_holds_requests_but_no_key(acme_data: Stack) -> None:
    # Every test of this module has sent its keys by now if it ran first; send them again.
    for name in acme_data.keys:
        acme_data.call("GET", "/buildings", name)
    log = acme_data.log_path.read_text(errors="replace")
    assert "GET /buildings" in log, "the server log was not captured: this proves nothing"
    for token in acme_data.keys.values():
        assert token not in log
        assert token.split("_", 2)[2] not in log
