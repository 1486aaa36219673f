"""The queue adapter: SendMessageBatch within SQS's limits (10 entries and 256 KiB a call),
entries the service failed are resent, under the retry policy (aws/retry.py)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws.retry import Retrier, error_code
from chalicelib.domain.errors import StorageUnavailableError

# SQS: at most 10 entries and 256 KiB per SendMessageBatch (and per message).
SQS_BATCH_ENTRIES = 10
SQS_BATCH_BYTES = 256 * 1024


class _Failed(Exception):
    """Some entries of a batch were not taken: they are sent again."""


def message_batches(bodies: Sequence[str]) -> Iterator[list[str]]:
    """Bodies grouped for SendMessageBatch: at most 10 per call and under 256 KiB per call."""
    batch: list[str] = []
    size = 0
    for body in bodies:
        length = len(body.encode("utf-8"))
        if batch and (len(batch) >= SQS_BATCH_ENTRIES or size + length > SQS_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(body)
        size += length
    if batch:
        yield batch


class SqsQueue:
    """One SQS queue, by URL (or by name, looked up on first use)."""

    def __init__(
        self,
        client: Any,
        *,
        url: str = "",
        name: str = "",
        what: str = "the queue",
        retrier: Retrier | None = None,
    ) -> None:
        self._client = client
        self._url = url
        self._name = name
        self.what = what
        self._retrier = retrier or Retrier(what)

    @property
    def url(self) -> str:
        """The queue's URL (503 when it is neither configured nor found)."""
        if not self._url:
            if not self._name:
                raise StorageUnavailableError(f"{self.what} is not configured", 30)
            response = self._retrier.call(self._client.get_queue_url, QueueName=self._name)
            self._url = str(response["QueueUrl"])
        return self._url

    def ping(self) -> None:
        """GetQueueAttributes: StorageUnavailableError unless the queue answers."""
        try:
            self._retrier.call(
                self._client.get_queue_attributes, QueueUrl=self.url, AttributeNames=["QueueArn"]
            )
        except ClientError as exc:
            raise StorageUnavailableError(f"{self.what}: {error_code(exc)}") from None

    def send(self, bodies: Sequence[str]) -> None:
        """Enqueue every body; entries the service failed are resent with backoff."""
        for batch in message_batches(bodies):
            pending = {str(i): body for i, body in enumerate(batch)}
            for attempt in self._retrier.rounds():
                entries = [{"Id": i, "MessageBody": b} for i, b in pending.items()]
                response = self._retrier.call(
                    self._client.send_message_batch, QueueUrl=self.url, Entries=entries
                )
                failed = response.get("Failed") or []
                if any(f.get("SenderFault") for f in failed):
                    raise ValueError(f"the queue refused messages: {failed[:3]}")
                pending = {f["Id"]: pending[f["Id"]] for f in failed}
                if pending:
                    attempt.failed(_Failed(f"{len(pending)} entries failed"))

    def send_later(self, body: str, delay_s: int) -> None:
        """Enqueue one body, delivered after `delay_s` seconds (SQS allows up to 900)."""
        self._retrier.call(
            self._client.send_message,
            QueueUrl=self.url,
            MessageBody=body,
            DelaySeconds=max(0, min(900, int(delay_s))),
        )

    def receive(self, max_messages: int = 10, wait_seconds: int = 1) -> list[dict[str, Any]]:
        """Up to `max_messages` messages (the local poller's side), with their attributes."""
        response = self._client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def delete(self, receipt_handles: Sequence[str]) -> None:
        """Delete handled messages."""
        for start in range(0, len(receipt_handles), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": h}
                for i, h in enumerate(receipt_handles[start : start + 10])
            ]
            self._client.delete_message_batch(QueueUrl=self.url, Entries=entries)
