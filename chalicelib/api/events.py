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
from chalicelib.domain.models import earliest_sequence
from chalicelib.domain.timeutil import now_ms
from chalicelib.services import alerts, reports, rollups
from chalicelib.settings import get_settings

NOTIFY_RESERVE_SECONDS = 5.0  # kept back for re-sending what is left and reporting the batch


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
        changes = wiring.table_changes(records)
        outcome = rollups.fold(
            wiring.repositories().rollups, changes, concurrency=get_settings().rollup_threads
        )
        # Alerts after rollups, for the rooms whose rollups are done (the others come again).
        alerted = alerts.evaluate(wiring.alerting(), changes, skip=outcome.failed_rooms)
    observability.logger().debug(
        "stream batch",
        records=len(records),
        readings=outcome.readings,
        rooms=outcome.rooms,
        rollups_written=outcome.rollups_written,
        failed_rooms=len(outcome.failed_rooms),
        alert_rooms=alerted.rooms,
        alert_transitions=alerted.transitions,
        alert_failed_rooms=len(alerted.failed_rooms),
    )
    failed_from = earliest_sequence(outcome.failed_from, alerted.failed_from)
    failed = [] if failed_from is None else [{"itemIdentifier": failed_from}]
    return {"batchItemFailures": failed}


def notify_messages(event: SQSEvent) -> dict[str, Any]:
    """The notify queue: deliver each alert transition to its rule's targets (webhooks, SNS).

    Under the worker budget: each delivery has a deadline, and once the invocation's remaining
    time is shorter than one delivery and a reserve, the rest is re-sent to the queue unsent
    (its attempt not counted), so no message waits out a visibility timeout behind a slow one.
    """
    settings = get_settings()
    policy = alerts.DeliveryPolicy(
        max_attempts=settings.notify_max_attempts,
        base_delay_s=settings.notify_retry_base_seconds,
    )
    remaining = getattr(event.context, "get_remaining_time_in_millis", None)
    time_left = None if remaining is None else (lambda: remaining() / 1000)
    needed_s = wiring.notify_deadline_seconds() + NOTIFY_RESERVE_SECONDS

    def handle(record: Any) -> None:
        alerts.deliver(
            wiring.alert_repository(),
            wiring.notifier(),
            wiring.notify_queue(),
            record.body,
            policy=policy,
            allow_local=settings.webhooks_allow_local,
            time_left=time_left,
            needed_s=needed_s,
        )

    return _sqs_batch(event, handle)


def silent_rooms(event: Any) -> dict[str, Any]:
    """The schedule: fire the silent rules of rooms without readings (and clear the rest), and
    enqueue the notifications whose enqueue failed (the notify queue was down)."""
    remaining = getattr(getattr(event, "context", None), "get_remaining_time_in_millis", None)
    with wiring.worker_budget(remaining):
        repos = wiring.repositories()
        deps = wiring.alerting()
        now = now_ms()
        outcome = alerts.check_silence(deps, repos.registry, now)
        requeued = alerts.enqueue_unsent(deps, now) if deps.queue is not None else 0
    observability.logger().debug(
        "silence check", rooms=outcome.rooms, transitions=outcome.transitions, requeued=requeued
    )
    return {"rooms": outcome.rooms, "transitions": outcome.transitions, "requeued": requeued}
