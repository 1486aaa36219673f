"""The ingest queue adapter: SendMessageBatch (10 per call, < 256 KiB), failed entries resent."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import StorageUnavailableError
from chalicelib.services.ingest import message_batches


class SqsQueue:
    """One SQS queue, by URL (or by name, looked up on first use)."""

    def __init__(
        self,
        client: Any,
        *,
        url: str = "",
        name: str = "",
        max_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._url = url
        self._name = name
        self._max_attempts = max_attempts
        self._sleep = sleep

    @property
    def url(self) -> str:
        """The queue's URL."""
        if not self._url:
            try:
                self._url = str(self._client.get_queue_url(QueueName=self._name)["QueueUrl"])
            except (BotoCoreError, ClientError) as exc:
                raise StorageUnavailableError("the ingest queue is not available", 5) from exc
        return self._url

    def send(self, bodies: Sequence[str]) -> None:
        """Enqueue every body; entries the service failed are resent with backoff."""
        for batch in message_batches(bodies):
            pending = {str(i): body for i, body in enumerate(batch)}
            for attempt in range(self._max_attempts):
                entries = [{"Id": i, "MessageBody": b} for i, b in pending.items()]
                try:
                    response = self._client.send_message_batch(QueueUrl=self.url, Entries=entries)
                except (BotoCoreError, ClientError) as exc:
                    if attempt + 1 == self._max_attempts:
                        raise StorageUnavailableError("the ingest queue is busy; retry", 2) from exc
                    self._sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
                    continue
                failed = response.get("Failed") or []
                if any(f.get("SenderFault") for f in failed):
                    raise ValueError(f"the queue refused messages: {failed[:3]}")
                pending = {f["Id"]: pending[f["Id"]] for f in failed}
                if not pending:
                    break
                self._sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
            else:
                raise StorageUnavailableError("the ingest queue keeps failing; retry shortly", 2)

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
