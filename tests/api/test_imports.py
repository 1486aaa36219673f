"""Bulk imports through the API (POST /imports, GET /imports/{id}, GET /imports), in-process:
chalice.test.Client and moto, the file uploaded with its presigned form, the ingest handler fed
the bucket's notification as the local poller (and Lambda) would."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import requests  # moto's own dependency; mock_aws answers it like S3
from chalice.test import Client

from app import app
from chalicelib import wiring
from chalicelib.api import imports as imports_api
from chalicelib.domain.access import Scope
from chalicelib.services import access, registry
from chalicelib.settings import get_settings
from infra.cli.keys import bootstrap_key
from infra.local import QueuePoller

if TYPE_CHECKING:
    from tests.ingest_fixtures import Aws

pytest_plugins = ["tests.ingest_fixtures"]

T0 = 1_764_460_800  # 2025-11-30T00:00:00Z
GOOD_AND_BAD = (
    "building,room,sensor_id,timestamp,temperature\n"
    f"hq,r1,s1,{T0},20.5\n"
    f"hq,r1,s1,{T0 + 60},not-a-number\n"
    f"hq,r2,s2,{T0 + 60},21.5\n"
).encode()


class Caller:
    """One API key's JSON calls."""

    def __init__(self, client: Client, key: str) -> None:
        self.client, self.key = client, key
        self.headers: dict[str, str] = {}

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        sent = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body)
        response = self.client.http.request(
            method, path, headers={**sent, **(headers or {})}, body=data
        )
        self.headers = dict(response.headers)
        return response.status_code, json.loads(response.body) if response.body else None


@pytest.fixture
def client(aws: Aws) -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


def key_of(tenant: str, scopes: list[Scope], **bindings: Any) -> str:
    if not bindings:
        return str(bootstrap_key(tenant, scopes, f"{tenant} imports")["key"])
    repos = wiring.repositories()
    _, token = access.issue_key(
        repos.keys, repos.registry, tenant=tenant, scopes=scopes, name="bound", now_ms=0, **bindings
    )
    return token


def upload(form: dict[str, Any], data: bytes) -> int:
    """The file sent as a browser or `curl -F` would: every field, then the file."""
    answer = requests.post(
        form["url"], data=form["fields"], files={"file": ("upload", data)}, timeout=10
    )
    return answer.status_code


def test_an_uploaded_file_is_imported_and_its_report_shows_counts_and_rejected_rows(
    aws: Aws, client: Client
) -> None:
    # Given an ingest key of tenant acme asks for an import
    acme = Caller(client, key_of("acme", [Scope.INGEST]))
    status, created = acme.call("POST", "/imports", {"filename": "day.csv"})
    assert status == 201, created
    import_id = created["import_id"]
    assert created["status"] == "awaiting_upload"
    assert created["status_url"] == f"/imports/{import_id}" == acme.headers["Location"]
    assert created["upload"]["method"] == "POST"
    assert created["upload"]["fields"]["key"] == f"incoming/acme/{import_id}/day.csv"
    policy = created["upload"]["fields"]["policy"]
    assert "content-length-range" in base64.b64decode(policy).decode()
    assert acme.call("GET", f"/imports/{import_id}")[1]["status"] == "awaiting_upload"

    # When the file (two good rows, one bad) is uploaded with the form
    assert upload(created["upload"], GOOD_AND_BAD) == 204
    status, seen = acme.call("GET", f"/imports/{import_id}")
    assert (status, seen["status"]) == (200, "queued")
    # and the ingest handler takes the bucket's notification
    assert QueuePoller(aws.queue_url, wait_seconds=0).poll_once() == 1

    # Then the import is done, with its counts and its rejected row
    status, done = acme.call("GET", f"/imports/{import_id}")
    assert status == 200
    assert done["status"] == "done"
    assert (done["rows"], done["stored"], done["duplicates"], done["rejected"]) == (3, 2, 0, 1)
    assert [row["line"] for row in done["rejected_rows"]] == [3]
    assert "temperature" in done["rejected_rows"][0]["reason"]
    assert done["started_at"] and done["updated_at"]
    # and the readings are the tenant's
    admin = Caller(client, key_of("acme", [Scope.ADMIN]))
    status, latest = admin.call("GET", "/buildings/hq/rooms/r2/latest")
    assert status == 200, latest
    assert latest["temperature"] == 21.5


def test_the_same_file_uploaded_again_is_counted_as_duplicates(aws: Aws, client: Client) -> None:
    acme = Caller(client, key_of("acme", [Scope.INGEST]))
    for expected_stored, expected_duplicates in ((2, 0), (0, 2)):
        _, created = acme.call("POST", "/imports", {"filename": "day.csv"})
        assert upload(created["upload"], GOOD_AND_BAD) == 204
        QueuePoller(aws.queue_url, wait_seconds=0).poll_once()
        _, done = acme.call("GET", f"/imports/{created['import_id']}")
        assert (done["stored"], done["duplicates"]) == (expected_stored, expected_duplicates)


def test_another_tenants_import_and_unknown_ids_are_not_found(aws: Aws, client: Client) -> None:
    acme = Caller(client, key_of("acme", [Scope.INGEST]))
    other = Caller(client, key_of("globex", [Scope.ADMIN, Scope.INGEST]))
    _, created = acme.call("POST", "/imports", {"filename": "day.csv"})

    status, answer = other.call("GET", f"/imports/{created['import_id']}")
    assert status == 404 and answer["Code"] == "NotFound"
    assert other.call("GET", "/imports")[1]["items"] == []
    assert acme.call("GET", "/imports/0000000000000-" + "0" * 32)[0] == 404
    status, answer = acme.call("GET", "/imports/" + "a" * 65)
    assert status == 422 and set(answer) >= {"Code", "Message"}


def test_keys_bound_to_buildings_or_sensors_cannot_use_imports(aws: Aws, client: Client) -> None:
    repos = wiring.repositories()
    registry.create_building(repos.registry, "acme", "hq", name=None, metadata=None, now_ms=0)
    registry.create_sensor(
        repos.registry, "acme", "s1", name=None, metadata=None, building=None, room=None, now_ms=0
    )
    for bindings in ({"buildings": ["hq"]}, {"sensors": ["s1"]}):
        bound = Caller(client, key_of("acme", [Scope.INGEST, Scope.READ], **bindings))
        status, answer = bound.call("POST", "/imports", {"filename": "day.csv"})
        assert status == 403, answer
        assert "bound" in answer["Message"] and "any building" in answer["Message"]
        assert bound.call("GET", "/imports")[0] == 403


def test_a_read_key_cannot_start_an_import_but_can_follow_one(aws: Aws, client: Client) -> None:
    reader = Caller(client, key_of("acme", [Scope.READ]))
    status, answer = reader.call("POST", "/imports", {"filename": "day.csv"})
    assert status == 403 and "'ingest' or 'admin'" in answer["Message"]
    admin = Caller(client, key_of("acme", [Scope.ADMIN]))
    _, created = admin.call("POST", "/imports", {})
    assert created["filename"] == "readings.csv"
    assert reader.call("GET", f"/imports/{created['import_id']}")[0] == 200


@pytest.mark.parametrize(
    "body",
    [
        {"filename": "day.txt"},
        {"filename": "../day.csv"},
        {"filename": "a/b.csv"},
        {"filename": "x" * 70 + ".csv"},
        {"filename": 5},
        {"filename": "day.csv", "building": "hq"},
        ["day.csv"],
    ],
)
def test_a_bad_request_is_a_4xx_json_error(aws: Aws, client: Client, body: Any) -> None:
    acme = Caller(client, key_of("acme", [Scope.INGEST]))
    status, answer = acme.call("POST", "/imports", body)
    assert status == 422, answer
    assert set(answer) >= {"Code", "Message"}


def test_a_body_that_is_not_json_is_a_400(aws: Aws, client: Client) -> None:
    acme = Caller(client, key_of("acme", [Scope.INGEST]))
    assert acme.call("POST", "/imports", b"filename=day.csv")[0] == 400


def test_a_post_without_a_body_imports_readings_csv(aws: Aws, client: Client) -> None:
    acme = Caller(client, key_of("acme", [Scope.INGEST]))
    status, created = acme.call("POST", "/imports")  # no body at all
    assert status == 201, created
    assert created["filename"] == "readings.csv"
    assert created["upload"]["fields"]["key"].endswith("/readings.csv")


def test_a_retried_post_with_its_idempotency_key_is_the_same_import(
    aws: Aws, client: Client
) -> None:
    acme = Caller(client, key_of("acme", [Scope.INGEST]))
    retry = {"Idempotency-Key": "upload-2025-11-30"}
    _, first = acme.call("POST", "/imports", {"filename": "day.csv"}, retry)
    assert acme.headers.get("Location") == f"/imports/{first['import_id']}"
    status, again = acme.call("POST", "/imports", {"filename": "day.csv"}, retry)
    assert status == 201 and acme.headers.get("Idempotent-Replayed") == "true"
    assert again["import_id"] == first["import_id"]
    assert acme.headers.get("Location") == f"/imports/{first['import_id']}"
    _, fresh = acme.call("POST", "/imports", {"filename": "day.csv"})
    assert fresh["import_id"] != first["import_id"]
    assert len(acme.call("GET", "/imports")[1]["items"]) == 2


def test_imports_are_listed_newest_first_in_pages(
    aws: Aws, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = Caller(client, key_of("acme", [Scope.INGEST]))
    made = []
    for i in range(3):
        monkeypatch.setattr(imports_api, "now_ms", lambda i=i: T0 * 1000 + i * 1000)
        made.append(acme.call("POST", "/imports", {"filename": f"day{i}.csv"})[1]["import_id"])

    status, first = acme.call("GET", "/imports?limit=2")
    assert status == 200
    assert [item["import_id"] for item in first["items"]] == [made[2], made[1]]
    assert first["next_cursor"]
    assert "rejected_rows" not in first["items"][0] or first["items"][0]["rejected_rows"] is None
    _, second = acme.call("GET", f"/imports?limit=2&cursor={first['next_cursor']}")
    assert [item["import_id"] for item in second["items"]] == [made[0]]
    assert second["next_cursor"] is None


def test_a_cursor_of_another_list_is_refused(aws: Aws, client: Client) -> None:
    # Given a genuine next_cursor of GET /buildings (two buildings, pages of one)
    admin = Caller(client, key_of("acme", [Scope.ADMIN]))
    for building in ("hq", "annex"):
        assert admin.call("POST", "/buildings", {"building": building})[0] == 201
    status, buildings = admin.call("GET", "/buildings?limit=1")
    assert status == 200 and buildings["next_cursor"]

    # When it is sent to GET /imports
    status, answer = admin.call("GET", f"/imports?cursor={buildings['next_cursor']}")

    # Then it is refused, not taken as a position in the imports
    assert status == 400, answer
    assert set(answer) >= {"Code", "Message"}


def test_an_upload_form_not_used_in_time_shows_expired(
    aws: Aws, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = Caller(client, key_of("acme", [Scope.INGEST]))
    _, created = acme.call("POST", "/imports", {"filename": "day.csv"})
    later = imports_api.now_ms() + 3_600_000
    monkeypatch.setattr(imports_api, "now_ms", lambda: later)
    assert acme.call("GET", f"/imports/{created['import_id']}")[1]["status"] == "expired"


def test_an_uploaded_file_no_worker_starts_shows_stalled_with_what_to_do(
    aws: Aws, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a file uploaded whose notification no worker takes (its ingest fails every receive)
    acme = Caller(client, key_of("acme", [Scope.INGEST]))
    _, created = acme.call("POST", "/imports", {"filename": "day.csv"})
    assert upload(created["upload"], GOOD_AND_BAD) == 204
    status_url = f"/imports/{created['import_id']}"
    stall_s = get_settings().import_stall_seconds
    uploaded = imports_api.now_ms()

    # Then it is queued until the notification has used every receive, then stalled
    monkeypatch.setattr(imports_api, "now_ms", lambda: uploaded + stall_s * 1000 - 60_000)
    assert acme.call("GET", status_url)[1]["status"] == "queued"
    monkeypatch.setattr(imports_api, "now_ms", lambda: uploaded + stall_s * 1000 + 60_000)
    status, seen = acme.call("GET", status_url)
    assert (status, seen["status"]) == (200, "stalled")
    assert "dead-letter queue" in seen["error"]
    assert acme.call("GET", "/imports")[1]["items"][0]["status"] == "stalled"
