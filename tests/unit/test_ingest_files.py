"""File ingestion with fakes: reports, rejected lines, redelivery, continuation in segments."""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from typing import Any

import pytest

from chalicelib.domain import imports
from chalicelib.domain.errors import StorageUnavailableError
from chalicelib.services import access
from chalicelib.services import imports as files
from chalicelib.services.ingest import Writer
from chalicelib.services.messages import Consumer, Message
from tests.fakes import InMemoryObjectStore, InMemoryQueue, in_memory_repositories

T0 = 1_735_689_600  # 2025-01-01T00:00:00Z
HEADER = "building,room,sensor_id,timestamp,temperature,unit,humidity,co2\n"


def csv_rows(count: int, *, room: str = "r1") -> str:
    return "".join(f"b1,{room},s1,{T0 + i * 60},{20 + i % 5},C,40,\n" for i in range(count))


class Harness:
    def __init__(self, *, max_rows: int = 0, chunk_rows: int = 1000) -> None:
        self.objects = InMemoryObjectStore()
        self.queue = InMemoryQueue()
        self.repos = in_memory_repositories()
        self.repo = self.repos.readings
        access.ensure_tenant(self.repos.registry, "acme", 0)
        self.max_rows = max_rows
        self.chunk_rows = chunk_rows

    def consumer(self) -> Consumer:
        return Consumer(
            objects=self.objects,
            queue=self.queue,
            store=Writer(self.repos),
            budget=files.Budget(max_rows=self.max_rows),
            chunk_rows=self.chunk_rows,
        )

    def drop(self, key: str, data: bytes) -> str:
        etag = self.objects.put(key, data)
        return s3_event(key, etag)

    def deliver(self, *bodies: str) -> list[str]:
        """Deliver the bodies, then every continuation they queue, one invocation each."""
        failed: list[str] = []
        pending = list(bodies)
        while pending:
            body = pending.pop(0)
            failed += self.consumer().handle_batch([Message("m", body)])
            pending += self.queue.take()
        return failed

    def report(self, key: str) -> dict[str, Any]:
        report = self.objects.get_json(imports.status_key(key))
        assert report is not None
        return dict(report)

    def stored(self, room: str = "r1") -> int:
        return len(self.repo.window("acme", "b1", room, 0, 2**62))


def s3_event(key: str, etag: str) -> str:
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "bucket"}, "object": {"key": key, "eTag": etag}},
    }
    return json.dumps({"Records": [record]})


def test_mixed_file_reports_each_rejected_line_with_its_reason() -> None:
    # Given a CSV with good rows, a row below absolute zero, a short row and a bad timestamp
    h = Harness()
    bad = "b1,r1,s1,1735700000,-300,C,,\nb1,r1\n\nb1,r1,s2,yesterday,20,C,,\n"
    data = HEADER + csv_rows(3) + bad
    key = "incoming/acme/2025/mixed.csv"
    # When it is ingested
    assert h.deliver(h.drop(key, data.encode())) == []
    # Then the valid rows are stored and the report names lines and reasons
    report = h.report(key)
    assert (report["status"], report["rows_read"], report["stored"]) == ("done", 6, 3)
    assert report["rejected"] == 3 and report["duplicates"] == 0
    lines = {r["line"]: r["reason"] for r in report["rejected_rows"]}
    assert set(lines) == {5, 6, 8}
    assert "absolute zero" in lines[5]
    assert "expected 8 fields" in lines[6]
    assert "timestamp" in lines[8]
    assert report["tenant"] == "acme"
    assert h.stored() == 3


def test_malformed_file_fails_with_a_report_and_stores_nothing() -> None:
    h = Harness()
    key = "incoming/acme/bad.csv"
    assert h.deliver(h.drop(key, b"when,where\n1,2\n")) == []
    report = h.report(key)
    assert report["status"] == "failed"
    assert "header" in report["error"]
    assert h.stored() == 0


def test_key_without_a_tenant_is_rejected_into_its_report() -> None:
    h = Harness()
    key = "incoming/loose.csv"
    h.deliver(h.drop(key, (HEADER + csv_rows(2)).encode()))
    assert h.report(key)["status"] == "failed"
    assert "incoming/<tenant>/" in h.report(key)["error"]
    assert h.stored() == 0


def test_duplicate_delivery_of_the_same_event_stores_and_counts_nothing_twice() -> None:
    h = Harness()
    key = "incoming/acme/day.ndjson"
    lines = [
        json.dumps({"building": "b1", "room": "r1", "timestamp": T0 + i, "co2": 400 + i})
        for i in range(50)
    ]
    event = h.drop(key, ("\n".join(lines) + "\n").encode())
    h.deliver(event)
    first = h.report(key)
    # When S3 delivers the same event again
    h.deliver(event)
    # Then nothing is stored twice and the report is unchanged
    assert h.stored() == 50
    assert h.report(key) == first
    assert (first["stored"], first["duplicates"]) == (50, 0)


def test_a_new_version_of_the_file_is_ingested_again_counting_known_rows_as_duplicates() -> None:
    h = Harness()
    key = "incoming/acme/day.csv"
    h.deliver(h.drop(key, (HEADER + csv_rows(10)).encode()))
    h.deliver(h.drop(key, (HEADER + csv_rows(15)).encode()))
    report = h.report(key)
    assert (report["stored"], report["duplicates"]) == (5, 10)
    assert h.stored() == 15


@pytest.mark.parametrize("compressed", [False, True])
def test_large_file_is_continued_in_segments_until_done(compressed: bool) -> None:
    # Given a budget of 100 rows per invocation and a 1,050-row file
    h = Harness(max_rows=100, chunk_rows=40)
    data = (HEADER + csv_rows(1050)).encode()
    key = "incoming/acme/big.csv" + (".gz" if compressed else "")
    event = h.drop(key, gzip.compress(data) if compressed else data)
    # When it and the continuations it queues are handled
    assert h.deliver(event) == []
    # Then every row is stored once, over several segments, with exact totals
    report = h.report(key)
    assert report["status"] == "done"
    assert report["segments"] == 9  # 120 rows (3 chunks of 40) per invocation
    assert (report["rows_read"], report["stored"], report["rejected"]) == (1050, 1050, 0)
    assert h.stored() == 1050
    if not compressed:  # later segments read from their byte offset, not from the start
        assert all(start > 0 for _, start in h.objects.opened[1:])


def test_redelivered_continuation_does_nothing_twice() -> None:
    h = Harness(max_rows=10, chunk_rows=10)
    key = "incoming/acme/c.csv"
    h.consumer().handle(h.drop(key, (HEADER + csv_rows(25)).encode()))
    (continuation,) = h.queue.take()
    h.consumer().handle(continuation)
    (second,) = h.queue.take()
    before = h.report(key)
    # When the first continuation comes again (the next one was queued already)
    h.consumer().handle(continuation)
    # Then the report is unchanged and nothing is queued again
    assert h.report(key) == before
    assert h.queue.take() == []
    h.deliver(second)
    assert (h.report(key)["rows_read"], h.report(key)["stored"], h.stored()) == (25, 25, 25)


class FailingQueue(InMemoryQueue):
    """A queue whose next `failures` sends raise, as SQS does when its retries run out."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def send(self, bodies: Sequence[str]) -> None:
        if self.failures:
            self.failures -= 1
            raise StorageUnavailableError("the ingest queue is busy; retry", 2)
        super().send(bodies)


def test_continuation_lost_after_the_report_was_saved_is_queued_once_by_the_redelivery() -> None:
    # Given a segment whose report was saved but whose continuation could not be sent
    h = Harness(max_rows=10, chunk_rows=10)
    h.queue = FailingQueue(failures=1)
    key = "incoming/acme/lost.csv"
    event = h.drop(key, (HEADER + csv_rows(25)).encode())
    assert h.consumer().handle_batch([Message("m", event)]) == ["m"]
    assert h.queue.take() == []
    # When the failed message is redelivered, twice
    h.consumer().handle(event)
    h.consumer().handle(event)
    # Then the lost continuation is queued exactly once, and the file completes
    (continuation,) = h.queue.take()
    assert h.deliver(continuation) == []
    assert (h.report(key)["status"], h.report(key)["stored"], h.stored()) == ("done", 25, 25)


def test_duplicate_continuations_do_not_multiply() -> None:
    # Given a file of five segments whose every message is delivered twice (at least once)
    h = Harness(max_rows=10, chunk_rows=10)
    key = "incoming/acme/dup.csv"
    pending = [h.drop(key, (HEADER + csv_rows(45)).encode())] * 2
    handled = 0
    # When every message and every continuation it queues is handled, each twice
    while pending and handled < 100:
        h.consumer().handle(pending.pop(0))
        handled += 1
        pending += [body for body in h.queue.take() for _ in range(2)]
    # Then each segment's message was handled twice, not 2, 4, 8, ... times
    assert handled == 10
    assert (h.report(key)["status"], h.report(key)["stored"], h.stored()) == ("done", 45, 45)


def test_poison_message_fails_alone_and_valid_messages_are_stored_once() -> None:
    h = Harness()
    good = json.dumps(
        {
            "tenant": "acme",
            "readings": [{"building": "b1", "room": "r1", "timestamp": T0, "temperature": 21}],
        }
    )
    single = json.dumps(
        {"tenant": "acme", "building": "b1", "room": "r1", "timestamp": T0 + 1, "co2": 500}
    )
    batch = [
        Message("1", good),
        Message("2", "{not json"),
        Message("3", json.dumps({"readings": []})),
        Message("4", single),
        Message("5", json.dumps({"Event": "s3:TestEvent"})),
    ]
    assert h.consumer().handle_batch(batch) == ["2", "3"]
    # A retry of the whole batch (as without ReportBatchItemFailures) still stores nothing twice
    h.consumer().handle_batch(batch)
    assert h.stored() == 2


def test_readings_message_with_invalid_readings_is_not_retried() -> None:
    h = Harness()
    body = json.dumps(
        {"tenant": "acme", "readings": [{"building": "b1", "room": "r1", "temperature": -999}]}
    )
    assert h.consumer().handle_batch([Message("1", body)]) == []
    assert h.stored() == 0
