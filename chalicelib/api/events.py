"""The bodies of the event handlers that app.py registers: queue messages in, partial failures out.

Each returns {"batchItemFailures": [...]} through Powertools' batch utility: with
FunctionResponseTypes=ReportBatchItemFailures on the event source mapping only the failed
messages are retried, then dead-lettered. A batch whose every message failed is reported the
same way (not raised), so the local pollers and Lambda treat it alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalice.app import DynamoDBEvent, SQSEvent

from chalicelib import observability, wiring
from chalicelib.domain.timeutil import now_ms
from chalicelib.services import reports, rollups


def _sqs_batch(event: SQSEvent, handle: Callable[[Any], None]) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    remaining = getattr(event.context, "get_remaining_time_in_millis", None)
    with wiring.worker_budget(remaining):
        response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
            event=event.to_dict(), record_handler=handle, processor=processor
        )
    return response


def ingest_messages(event: SQSEvent) -> dict[str, Any]:
    """The ingest queue: S3 file notifications, file continuations and readings messages."""
    remaining = getattr(event.context, "get_remaining_time_in_millis", None)
    consumer = wiring.ingest_consumer(remaining)

    def handle(record: Any) -> None:
        try:
            consumer.handle(record.body)
        except Exception as exc:  # reported as this message's failure: it alone comes back
            observability.logger().warning(
                "ingest message failed", message_id=record.message_id, error=repr(exc)[:500]
            )
            raise

    return _sqs_batch(event, handle)


def report_jobs(event: SQSEvent) -> dict[str, Any]:
    """The reports queue: compute each queued report (a busy table hands it back to the queue)."""

    def handle(record: Any) -> None:
        try:
            report_id = str(json.loads(record.body)["id"])
        except (ValueError, KeyError, TypeError):
            observability.logger().warning("dropping a malformed report message")
            return
        repos = wiring.repositories()
        reports.run_report(
            wiring.report_repository(),
            repos.rollups,
            repos.registry,
            report_id,
            clock=now_ms,
            delivery=int(record.attributes.approximate_receive_count or 1),
        )

    return _sqs_batch(event, handle)


def table_stream(event: DynamoDBEvent) -> dict[str, Any]:
    """The table's stream: fold new readings into their rooms' rollups.

    With FunctionResponseTypes=ReportBatchItemFailures, a failed room's first record is reported
    and the stream delivers it and the records after it again; the rest are done.
    """
    records = event.to_dict().get("Records", [])
    remaining = getattr(event.context, "get_remaining_time_in_millis", None)
    with wiring.worker_budget(remaining):
        outcome = rollups.fold(wiring.repositories().rollups, wiring.table_changes(records))
    observability.logger().debug(
        "stream batch",
        records=len(records),
        readings=outcome.readings,
        rooms=outcome.rooms,
        rollups_written=outcome.rollups_written,
        failed_rooms=len(outcome.failed_rooms),
    )
    failed = [] if outcome.failed_from is None else [{"itemIdentifier": outcome.failed_from}]
    return {"batchItemFailures": failed}
