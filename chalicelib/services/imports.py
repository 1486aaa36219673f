"""Ingestion of one file of the bucket, in segments that each fit one invocation.

A file is read from where the previous segment stopped (a byte offset and a line number), in chunks
of rows that go through the ingest Writer. When the invocation's time (or a row cap) runs out, the
position is saved in the file's import status and a continuation message is queued, so a file of
any size is finished by a chain of invocations instead of being cut off. Redelivered events and
continuations are recognised by the import status (same ETag, segment already done) and do nothing
twice. Its readings' rollups follow from the table's stream, like every other ingest path's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any, Protocol

from chalicelib import observability
from chalicelib.domain import formats
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.imports import ImportStatus, Segment, status_key, tenant_of
from chalicelib.domain.timeutil import format_ms, now_ms
from chalicelib.ports import MessageQueue, ObjectGoneError, ObjectStore
from chalicelib.services.readings import IngestOutcome


class Store(Protocol):
    """Where a file's rows go (services.ingest.Writer)."""

    def __call__(self, items: list[Any], tenant: str) -> IngestOutcome: ...


class Budget:
    """How much one invocation may still do: its remaining time minus a reserve, and a row cap."""

    def __init__(
        self,
        remaining_ms: Callable[[], int] | None = None,
        *,
        reserve_ms: int = 0,
        max_rows: int = 0,
    ) -> None:
        self._remaining_ms = remaining_ms
        self._reserve_ms = reserve_ms
        self._max_rows = max_rows
        self.rows = 0

    def spend(self, rows: int) -> None:
        """Count rows done in this invocation."""
        self.rows += rows

    def exhausted(self) -> bool:
        """Whether the invocation should hand the rest of its work on."""
        if self._max_rows and self.rows >= self._max_rows:
            return True
        return self._remaining_ms is not None and self._remaining_ms() <= self._reserve_ms


def _chunks(lines: Iterator[formats.Line], size: int) -> Iterator[list[formats.Line]]:
    chunk: list[formats.Line] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def process_segment(
    segment: Segment,
    *,
    objects: ObjectStore,
    queue: MessageQueue,
    store: Store,
    budget: Budget,
    chunk_rows: int = 1000,
) -> ImportStatus:
    """Ingest a file from `segment` on until it ends or the budget runs out; write its report."""
    key = segment.key
    previous = objects.get_json(status_key(key))
    report = _resume(previous, segment)
    if report is None:  # a redelivery of work already done
        _resend_lost_continuation(previous, segment, queue, objects)
        return (
            ImportStatus.from_json(previous)
            if isinstance(previous, dict)
            else ImportStatus(key, "")
        )
    stamp = format_ms(now_ms())
    report.started_at = report.started_at or stamp
    report.segments += 1
    try:
        report.tenant = tenant_of(key)
        kind = formats.file_kind(key)
        finished = _read(segment, report, kind, objects, store, budget, chunk_rows)
    except (ValidationError, formats.FileFormatError) as exc:
        report.status, report.error, report.next = "failed", str(exc), None
        finished = True
    except ObjectGoneError as exc:
        observability.logger().info(
            "ingest file gone; the newer version has its own event", key=key, error=str(exc)
        )
        report.status, report.error, report.next = "failed", str(exc), None
        finished = True
    report.updated_at = format_ms(now_ms())
    if finished and report.status == "in_progress":
        report.status, report.next = "done", None
    report.next_queued = False
    if not finished:
        report.next = asdict(segment)
    objects.put_json(status_key(key), report.to_json())
    if not finished:
        queue.send([segment.to_message()])
        _mark_queued(objects, report)
    observability.logger().info(
        "ingest file",
        key=key,
        status=report.status,
        segment=report.segments,
        rows_read=report.rows_read,
        stored=report.stored,
        duplicates=report.duplicates,
        rejected=report.rejected,
    )
    return report


def _resume(previous: Any, segment: Segment) -> ImportStatus | None:
    """The report to continue, a fresh one, or None when this segment was done already."""
    if not isinstance(previous, dict) or previous.get("etag") != segment.etag:
        if segment.number:
            # A continuation of an older version of the file: that version is gone.
            return None
        return ImportStatus(segment.key, segment.etag)
    report = ImportStatus.from_json(previous)
    if report.status != "in_progress" or report.next is None:
        return None
    if int(report.next.get("number", -1)) != segment.number:
        return None
    return report


def _mark_queued(objects: ObjectStore, report: ImportStatus) -> None:
    # Recorded after the send, so that duplicates of this segment's message (SQS delivers at least
    # once, and a send that timed out may have been stored) do not queue the next one again: each
    # such resend would be duplicated in turn, doubling the copies with every segment.
    report.next_queued = True
    objects.put_json(status_key(report.key), report.to_json())


def _resend_lost_continuation(
    previous: Any, segment: Segment, queue: MessageQueue, objects: ObjectStore
) -> None:
    # The report was saved but the invocation died before queueing the next segment: requeue it.
    if not isinstance(previous, dict) or previous.get("etag") != segment.etag:
        return
    following = previous.get("next")
    if (
        previous.get("status") == "in_progress"
        and following
        and int(following.get("number", -1)) == segment.number + 1
        and not previous.get("next_queued")
    ):
        queue.send([Segment.from_message(following).to_message()])
        _mark_queued(objects, ImportStatus.from_json(previous))


def _read(
    segment: Segment,
    report: ImportStatus,
    kind: formats.FileKind,
    objects: ObjectStore,
    store: Store,
    budget: Budget,
    chunk_rows: int,
) -> bool:
    """Read and store chunks from the segment's position; advance it; True if the file ended."""
    assert report.tenant is not None
    start = 0 if kind.gzip else segment.offset
    skip = segment.offset if kind.gzip else 0
    body = objects.open(segment.key, etag=segment.etag, start=start)
    lines = formats.iter_lines(
        body, compressed=kind.gzip, offset=segment.offset, line=segment.line, skip=skip
    )
    header = tuple(segment.header) if segment.header else None
    started = time.monotonic()
    for chunk in _chunks(lines, chunk_rows):
        items: list[Any] = []
        numbers: list[int] = []
        for line in chunk:
            if not line.data.strip() and not line.too_long:
                continue  # blank lines are not rows
            try:
                text = formats.decode(line)
                if kind.format is formats.Format.NDJSON:
                    items.append(formats.ndjson_row(text))
                elif header is None:
                    header = formats.parse_header(text)
                    continue
                else:
                    items.append(formats.csv_row(header, text))
                numbers.append(line.number)
            except formats.RowError as exc:
                report.rows_read += 1
                report.reject(line.number, str(exc))
            except (ArithmeticError, ValueError, RecursionError) as exc:  # this row alone
                report.rows_read += 1
                report.reject(line.number, f"row cannot be read: {type(exc).__name__}")
        if items:
            began = time.perf_counter()
            outcome = store(items, report.tenant)
            observability.record_ingest("S3", outcome, time.perf_counter() - began)
            report.rows_read += len(items)
            report.stored += outcome.accepted
            report.duplicates += outcome.duplicates
            for rejection in outcome.rejected:
                report.reject(numbers[rejection.index], rejection.message)
        last = chunk[-1]
        segment.offset, segment.line = last.end, last.number + 1
        segment.header = list(header) if header else None
        budget.spend(len(chunk))
        if budget.exhausted():
            segment.number += 1
            elapsed = time.monotonic() - started
            observability.logger().info(
                "ingest file hands on", key=segment.key, line=segment.line, seconds=elapsed
            )
            return False
    if kind.format is formats.Format.CSV and header is None:
        raise formats.FileFormatError("empty file: no CSV header")
    return True
