"""Imports through the API (services/uploads.py) over the in-memory bucket and a clock, and the
bucket adapter's side of them: where the upload form points, a refused read, a page's reads."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from pydantic import ValidationError

from chalicelib import wiring
from chalicelib.aws.retry import RetryPolicy, budget, current_budget
from chalicelib.aws.s3 import S3ObjectStore
from chalicelib.domain.errors import StorageUnavailableError
from chalicelib.ports import ObjectGoneError
from chalicelib.services import uploads
from chalicelib.settings_model import Settings
from tests.fakes import InMemoryObjectStore

T0_MS = 1_764_460_800_000  # 2025-11-30T00:00:00Z
HOUR_MS = 3_600_000
STALL_S = 27_000


class Clock:
    """Epoch ms that move only when the test says so."""

    def __init__(self) -> None:
        self.ms = T0_MS

    def __call__(self) -> int:
        return self.ms


def new_import(objects: InMemoryObjectStore, clock: Clock, nonce: str = "a" * 32) -> str:
    created = uploads.create_import(
        objects,
        "acme",
        "day.csv",
        key_id="k1",
        now_ms=clock(),
        nonce=nonce,
        seconds=900,
        max_bytes=1000,
    )
    return created.ticket.import_id


def status(objects: InMemoryObjectStore, import_id: str, clock: Clock) -> Any:
    return uploads.import_status(objects, "acme", import_id, now_ms=clock(), stall_seconds=STALL_S)


def test_a_file_no_worker_starts_shows_queued_then_stalled_with_a_reason() -> None:
    # Given an import whose file was uploaded ten minutes after it was asked for
    clock = Clock()
    objects = InMemoryObjectStore(clock)
    import_id = new_import(objects, clock)
    clock.ms += 600_000
    objects.put(f"incoming/acme/{import_id}/day.csv", b"building,room\n")

    # Then it is queued while its notification may still be received...
    clock.ms += STALL_S * 1000
    assert status(objects, import_id, clock).status == "queued"
    # ...and stalled, saying why, once every receive has passed with no status written
    clock.ms += 1000
    view = status(objects, import_id, clock)
    assert view.status == "stalled"
    assert view.error and "dead-letter queue" in view.error


def test_a_file_being_ingested_is_never_stalled() -> None:
    clock = Clock()
    objects = InMemoryObjectStore(clock)
    import_id = new_import(objects, clock)
    key = f"incoming/acme/{import_id}/day.csv"
    objects.put(key, b"building,room\n")
    objects.put_json(f"imports/acme/{import_id}/day.csv.json", {"key": key, "etag": "e"})
    clock.ms += 10 * STALL_S * 1000
    assert status(objects, import_id, clock).status == "processing"


def test_a_page_of_imports_costs_one_listing_and_at_most_three_reads_per_import() -> None:
    # Given 100 imports: some awaiting their file, some uploaded, some with a status
    clock = Clock()
    objects = InMemoryObjectStore(clock)
    for number in range(100):
        clock.ms += 1000
        import_id = new_import(objects, clock, nonce=f"{number:032d}")
        key = f"incoming/acme/{import_id}/day.csv"
        if number % 3:
            objects.put(key, b"x")
        if number % 3 == 2:
            objects.put_json(f"imports/acme/{import_id}/day.csv.json", {"key": key, "etag": "e"})
    objects.reads = 0

    # When GET /imports?limit=100 reads its page
    views, following = uploads.list_imports(
        objects, "acme", after=None, limit=100, now_ms=clock(), stall_seconds=STALL_S
    )

    # Then every import is there, newest first, for 1 listing + at most 300 reads
    assert len(views) == 100 and following is None
    assert [v.ticket.created_ms for v in views] == sorted(
        (v.ticket.created_ms for v in views), reverse=True
    )
    assert objects.reads <= 3 * 100
    assert {v.status for v in views} == {"awaiting_upload", "queued", "processing"}


# -- the bucket adapter -------------------------------------------------------------------------


@pytest.fixture
def no_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    wiring.aws_client.cache_clear()
    yield
    wiring.aws_client.cache_clear()


def test_the_upload_form_outside_us_east_1_points_at_the_regional_endpoint(
    no_endpoint: None,
) -> None:
    # Presigning is local: no call leaves the machine
    store = S3ObjectStore(wiring.aws_client("s3", "eu-west-1"), "roomtemp-data-dev")
    form = store.upload_form("incoming/acme/1/day.csv", max_bytes=10, seconds=60)
    assert form["url"] == "https://roomtemp-data-dev.s3.eu-west-1.amazonaws.com/"
    assert store.link("reports/r.csv").startswith(
        "https://roomtemp-data-dev.s3.eu-west-1.amazonaws.com/reports/r.csv?"
    )


def test_the_upload_form_of_an_emulator_uses_path_style(
    no_endpoint: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    store = S3ObjectStore(wiring.aws_client("s3", "eu-west-1"), "roomtemp-data-local")
    form = store.upload_form("incoming/acme/1/day.csv", max_bytes=10, seconds=60)
    assert form["url"] == "http://127.0.0.1:4566/roomtemp-data-local"


def stubbed_store(concurrency: int = 1) -> tuple[S3ObjectStore, Stubber]:
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    return S3ObjectStore(client, "roomtemp-data-dev", concurrency=concurrency), Stubber(client)


@pytest.mark.parametrize(
    ("operation", "read"),
    [
        ("get_object", lambda store: store.get_json("uploads/acme/1.json")),
        ("head_object", lambda store: store.etag("incoming/acme/1/day.csv")),
        ("head_object", lambda store: store.stored_ms("incoming/acme/1/day.csv")),
        ("list_objects_v2", lambda store: store.list_keys("uploads/acme/", after=None, limit=5)),
    ],
)
def test_a_read_the_role_is_refused_is_a_503_class_error_that_names_the_grant(
    operation: str, read: Any
) -> None:
    store, stubber = stubbed_store()
    stubber.add_client_error(operation, "AccessDenied", "Access Denied", 403)
    with stubber, pytest.raises(StorageUnavailableError) as refused:
        read(store)
    assert "refused" in str(refused.value) and "s3:ListBucket" in str(refused.value)


def test_a_missing_file_is_gone_and_a_stored_one_has_its_upload_time() -> None:
    store, stubber = stubbed_store()
    stubber.add_client_error("head_object", "404", "Not Found", 404)
    when = datetime.datetime(2025, 11, 30, tzinfo=datetime.UTC)
    stubber.add_response("head_object", {"ETag": '"e"', "LastModified": when})
    with stubber:
        with pytest.raises(ObjectGoneError):
            store.stored_ms("incoming/acme/1/day.csv")
        assert store.stored_ms("incoming/acme/1/day.csv") == T0_MS


def test_a_pages_reads_run_a_few_at_a_time_under_the_callers_budget() -> None:
    store, _ = stubbed_store(concurrency=4)
    seen: list[tuple[str, float | None]] = []
    lock = threading.Lock()

    def work(key: str) -> str:
        with lock:
            seen.append((threading.current_thread().name, current_budget().deadline))
        return key.upper()

    with budget(RetryPolicy(attempts=2), 15.0) as request:
        assert list(store.each(work, ["a", "b", "c", "d", "e"])) == ["A", "B", "C", "D", "E"]

    assert all(name.startswith("s3") for name, _ in seen)  # the pool's threads
    assert {deadline for _, deadline in seen} == {request.deadline}


@pytest.mark.parametrize("seconds", [0, 3601, 604_800])
def test_an_upload_form_longer_than_the_roles_session_is_refused(seconds: int) -> None:
    with pytest.raises(ValidationError, match="import_upload_seconds"):
        Settings(import_upload_seconds=seconds)
    assert Settings(import_upload_seconds=3600).import_upload_seconds == 3600
