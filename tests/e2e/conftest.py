"""The real thing over HTTP: moto's server and `chalice local` on free 127.0.0.1 ports."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from infra.local import (
    LOCALHOST,
    aws_env,
    bootstrap,
    free_port,
    issue_key,
    start_api,
    start_emulator_process,
    stop_process,
)

# `chalice local` applies the stage's ROOMTEMP_TABLE_NAME from .chalice/config.json over the
# environment, so the table must carry that name; each session has its own emulator anyway.
TABLE = "roomtemp"


def eventually(check: Callable[[], Any], what: str, seconds: float = 90) -> Any:
    """check()'s first truthy answer (the workers polling queues and the stream get there in
    their own time), or fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"never happened within {seconds:.0f} s: {what}")


class Http:
    """Every e2e call goes through here (request headers, e.g. auth, live here)."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.key = key  # admin + read + ingest of tenant "e2e", sent with every request

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        params: dict[str, Any] | None = None,
    ) -> tuple[int, Any]:
        url = self.base_url + path + (f"?{urlencode(params)}" if params else "")
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"}
        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        return status, json.loads(raw) if raw else None

    def post(self, path: str, json_body: Any = None, body: bytes | None = None) -> tuple[int, Any]:
        return self.request(
            "POST", path, body if body is not None else json.dumps(json_body).encode()
        )

    def get(self, path: str, params: dict[str, Any] | None = None) -> tuple[int, Any]:
        return self.request("GET", path, params=params)


@pytest.fixture(scope="session")
def emulator_endpoint() -> Iterator[str]:
    """moto's server in its own process (mock_aws in other tests resets in-process backends)."""
    port = free_port()
    process = start_emulator_process(port)
    try:
        yield f"http://{LOCALHOST}:{port}"
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def http(emulator_endpoint: str) -> Iterator[Http]:
    """`chalice local` (stage local) against the emulator, with the table created."""
    bootstrap(emulator_endpoint, TABLE)
    key = issue_key(emulator_endpoint, TABLE, "e2e", ["admin", "read", "ingest"], "e2e tests")
    port = free_port()
    process = start_api(port, aws_env(emulator_endpoint, TABLE), quiet=True)
    try:
        yield Http(f"http://{LOCALHOST}:{port}", key)
    finally:
        stop_process(process)
