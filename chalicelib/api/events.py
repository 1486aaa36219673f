"""Queue-driven handlers: the ingest queue (S3 file notifications, continuations, readings).

Deployed as its own Lambda ("ingest"). It returns {"batchItemFailures": [...]}: with
FunctionResponseTypes=ReportBatchItemFailures on the event source mapping (set in the deploy
template; Chalice does not set it) only the failed messages are retried, then dead-lettered.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint, SQSEvent

from chalicelib.services.messages import Message, consumer_from_settings

events = Blueprint(__name__)
INGEST_QUEUE = "roomtemp-ingest"


@events.on_sqs_message(queue=INGEST_QUEUE, batch_size=10, name="ingest")
def on_ingest_message(event: SQSEvent) -> dict[str, Any]:
    """Handle a batch of ingest messages; report the ones that failed, so only they come back."""
    context = event.context
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    consumer = consumer_from_settings(remaining)
    messages = [Message(r.to_dict()["messageId"], r.body) for r in event]
    failed = consumer.handle_batch(messages)
    return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
