"""The one funnel of every bulk/async ingest path into the idempotent writer, and queue packing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.inputs import check_identifier
from chalicelib.domain.models import Reading
from chalicelib.domain.timeutil import format_ms, now_ms
from chalicelib.ports import MessageQueue, Repositories
from chalicelib.services import readings
from chalicelib.services.readings import IngestOutcome
from chalicelib.services.registry import KnownRooms

# One message holds at most 100 readings and stays under SQS's 256 KiB per message, with room
# for SendMessageBatch's entry ids and attributes.
MESSAGE_BYTES = 240 * 1024
READINGS_PER_MESSAGE = 100


class Writer:
    """The funnel of every bulk and asynchronous ingest path (queue messages, files, the CLI,
    benchmarks): validates raw reading objects and stores the valid ones once each, in the
    tenant's rooms."""

    def __init__(
        self,
        repos: Repositories,
        *,
        known: KnownRooms | None = None,
        max_future_ms: int = 300_000,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._repos = repos
        self._known = known
        self._max_future_ms = max_future_ms
        self._clock = clock

    def __call__(self, items: Sequence[Any], tenant: str) -> IngestOutcome:
        """Store `items` for `tenant`; ValidationError if the tenant is unknown or disabled."""
        check_identifier(tenant, "tenant")
        found = self._repos.registry.get_tenant(tenant)
        if found is None or found.disabled:
            raise ValidationError(f"tenant {tenant} does not exist or is disabled")
        return readings.ingest_items(
            self._repos,
            items,
            tenant=tenant,
            now_ms=self._clock(),
            max_future_ms=self._max_future_ms,
            known=self._known,
        )


def enqueue_readings(queue: MessageQueue, readings: Sequence[Reading], tenant: str) -> int:
    """Queue validated readings for the ingest handler; return how many were queued."""
    queue.send(list(readings_messages(readings, tenant)))
    return len(readings)


def queued_reading(reading: Reading) -> dict[str, Any]:
    """A validated reading as a queue message carries it: re-validates to the same reading."""
    item: dict[str, Any] = {
        "building": reading.building,
        "room": reading.room,
        "sensor_id": reading.sensor_id,
        # Resolved now, so a reading without timestamp keeps its receive time, not its dequeue time.
        "timestamp": format_ms(reading.ts_ms),
    }
    for metric in ("temperature", "humidity", "co2"):
        value = getattr(reading, metric)
        if value is not None:
            item[metric] = value
    return item


def readings_messages(readings: Sequence[Reading], tenant: str) -> Iterator[str]:
    """Message bodies {"tenant", "readings": [...]}: at most 100 readings and 240 KiB each."""
    chunk: list[str] = []
    size = 0
    for reading in readings:
        text = json.dumps(queued_reading(reading), separators=(",", ":"))
        if chunk and (len(chunk) >= READINGS_PER_MESSAGE or size + len(text) > MESSAGE_BYTES):
            yield _readings_body(chunk, tenant)
            chunk, size = [], 0
        chunk.append(text)
        size += len(text) + 1
    if chunk:
        yield _readings_body(chunk, tenant)


def _readings_body(chunk: list[str], tenant: str) -> str:
    return '{"tenant":' + json.dumps(tenant) + ',"readings":[' + ",".join(chunk) + "]}"
