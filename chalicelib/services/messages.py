"""What the ingest queue's messages mean, and which of a batch failed (to be retried alone).

One queue carries three kinds of message:
- S3 event notifications for objects created under incoming/ (and S3's one-off s3:TestEvent);
- continuations of a file that did not fit one invocation ({"kind": "file-segment", ...});
- readings: {"tenant": T, "readings": [...]} or one reading object with a "tenant" key.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from chalicelib import observability
from chalicelib.domain import imports
from chalicelib.domain.errors import DomainError, StorageUnavailableError
from chalicelib.domain.inputs import load_json
from chalicelib.ports import MessageQueue, ObjectGoneError, ObjectStore
from chalicelib.services import imports as files


class MalformedMessageError(Exception):
    """A message of no known shape: it fails, is retried, and ends in the dead-letter queue."""


@dataclass(frozen=True, slots=True)
class Message:
    """One received message: its id (for batch item failures) and its body."""

    message_id: str
    body: str


@dataclass(slots=True)
class Consumer:
    """Handles ingest messages with the given bucket, queue and writer."""

    objects: ObjectStore
    queue: MessageQueue
    store: files.Store
    budget: files.Budget
    chunk_rows: int = 1000

    def handle_batch(self, messages: Sequence[Message]) -> list[str]:
        """Handle each message on its own; return the ids of those that failed."""
        failed: list[str] = []
        for message in messages:
            try:
                self.handle(message.body)
            except Exception as exc:  # one bad message must not fail the batch
                observability.logger().warning(
                    "ingest message failed", message_id=message.message_id, error=repr(exc)[:500]
                )
                failed.append(message.message_id)
        return failed

    def handle(self, body: str) -> None:
        """Handle one message body; raise if it should be retried (or dead-lettered)."""
        try:
            data = load_json(body)
        except ValueError:
            raise MalformedMessageError("body is not JSON") from None
        if not isinstance(data, dict):
            raise MalformedMessageError("body is not a JSON object")
        if data.get("Event") == "s3:TestEvent":
            return
        if "Records" in data:
            for segment in s3_segments(data, self.objects):
                self._file(segment)
            return
        if data.get("kind") == imports.SEGMENT_MESSAGE:
            try:
                segment = imports.Segment.from_message(data)
            except (KeyError, TypeError, ValueError):
                raise MalformedMessageError("a file-segment message lacks fields") from None
            self._file(segment)
            return
        self._readings(data)

    def _file(self, segment: imports.Segment) -> None:
        files.process_segment(
            segment,
            objects=self.objects,
            queue=self.queue,
            store=self.store,
            budget=self.budget,
            chunk_rows=self.chunk_rows,
        )

    def _readings(self, data: dict[str, Any]) -> None:
        tenant = data.get("tenant")
        if not isinstance(tenant, str):
            raise MalformedMessageError('a readings message needs "tenant"')
        if "readings" in data:
            items = data["readings"]
            if not isinstance(items, list) or len(data) != 2:
                raise MalformedMessageError('expected {"tenant": ..., "readings": [...]}')
        else:
            items = [{k: v for k, v in data.items() if k != "tenant"}]
        started = time.perf_counter()
        try:
            outcome = self.store(items, tenant)
        except StorageUnavailableError:
            raise  # the queue brings the message back
        except DomainError as exc:
            raise MalformedMessageError(f"{exc.code}: {exc.message}") from None
        observability.record_ingest("SQS", outcome, time.perf_counter() - started)
        # Rejected readings stay rejected on every retry: log them, do not retry the message.
        observability.logger().info(
            "ingest readings",
            tenant=tenant,
            accepted=outcome.accepted,
            duplicates=outcome.duplicates,
            rejected=len(outcome.rejected),
        )


def s3_segments(data: dict[str, Any], objects: ObjectStore) -> list[imports.Segment]:
    """The first segment of each object an S3 event notification announces."""
    segments = []
    records = data.get("Records")
    if not isinstance(records, list):
        raise MalformedMessageError('"Records" must be a list')
    for record in records:
        try:
            s3 = record["s3"]
            key = unquote_plus(s3["object"]["key"])
            etag = s3["object"].get("eTag") or s3["object"].get("etag")
        except (KeyError, TypeError):
            raise MalformedMessageError("an S3 record lacks s3.object.key") from None
        if not str(record.get("eventName", "ObjectCreated")).startswith("ObjectCreated"):
            continue
        if key.endswith("/"):
            continue  # a "folder" placeholder
        if not etag:
            try:
                etag = objects.etag(key)
            except ObjectGoneError:
                continue  # deleted since: nothing to ingest
        segments.append(imports.Segment(key=key, etag=str(etag).strip('"')))
    return segments
