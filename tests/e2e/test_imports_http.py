"""A bulk import as a user does it over real HTTP against the local stack (`make run`'s pieces on
free ports): POST /imports, the file POSTed to the presigned form, GET /imports/{id} until done,
then the readings answer from latest and series."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local import api_call, free_port, local_keys, local_stack
from tests.e2e.conftest import eventually

pytestmark = pytest.mark.e2e

AT_S = 1_748_779_200  # 2025-06-01T12:00:00Z
WAIT_S = 90  # a bound on the wait for the import, not a timing assertion


class Stack:
    def __init__(self, api: str, keys: dict[str, str]) -> None:
        self.api, self.keys = api, keys

    def call(self, method: str, path: str, body: Any = None, key: str = "ingest") -> Any:
        return api_call(self.api, self.keys[key], method, path, body)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Emulator, table, bucket, queues, `chalice local` and the queue and stream pollers."""
    with local_stack(free_port(), free_port(), "roomtemp", quiet=True) as (endpoint, api, _):
        yield Stack(api, local_keys(endpoint, "roomtemp", tenant="imports-e2e"))


def multipart(fields: dict[str, str], data: bytes, filename: str) -> tuple[bytes, str]:
    """A multipart/form-data body: the form's fields, then the file (as `curl -F` sends it)."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/csv\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def test_a_file_imported_through_the_api_is_queryable(stack: Stack) -> None:
    # Given an ingest key asks for an import
    building = f"b-{uuid.uuid4().hex[:8]}"
    status, created = stack.call("POST", "/imports", {"filename": "june.csv"})
    assert status == 201, created
    rows = "".join(f"{building},r1,s1,{AT_S + 60 * i},{20 + i}\n" for i in range(5))
    data = f"building,room,sensor_id,timestamp,temperature\n{rows}{building},r1,s1,x,1\n".encode()

    # When the file is POSTed to the presigned form
    body, content_type = multipart(created["upload"]["fields"], data, "june.csv")
    upload = urllib.request.Request(
        created["upload"]["url"], data=body, method="POST", headers={"Content-Type": content_type}
    )
    with urllib.request.urlopen(upload, timeout=15) as answer:
        assert answer.status in (200, 201, 204)

    # Then the import finishes (the local stack's poller runs the ingest handler) ...
    def finished() -> Any:
        status, seen = stack.call("GET", created["status_url"])
        assert status == 200, seen
        return seen if seen["status"] in ("done", "failed") else None

    seen = eventually(finished, "the import done", WAIT_S)
    assert seen["status"] == "done", seen
    assert (seen["rows"], seen["stored"], seen["rejected"]) == (6, 5, 1)
    assert seen["rejected_rows"][0]["line"] == 7
    # ... it is listed, and its readings answer
    _, listed = stack.call("GET", "/imports", key="admin")
    assert created["import_id"] in [item["import_id"] for item in listed["items"]]
    status, latest = stack.call("GET", f"/buildings/{building}/rooms/r1/latest", key="admin")
    assert (status, latest["temperature"]) == (200, 24.0)
    span = "from=2025-06-01T12:00:00Z&to=2025-06-01T13:00:00Z&interval=1h"

    def counted() -> int:  # rollups follow the table's stream
        status, series = stack.call(
            "GET", f"/buildings/{building}/rooms/r1/series?{span}", key="admin"
        )
        assert status == 200, series
        return sum(bucket["count"] for bucket in series["buckets"])

    eventually(lambda: counted() == 5, "the series counting the 5 readings", WAIT_S)
