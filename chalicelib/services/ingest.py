"""The one funnel of every bulk/async ingest path into the idempotent writer, and queue packing."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.inputs import check_identifier
from chalicelib.domain.models import Reading
from chalicelib.domain.rollups import RollupLedger
from chalicelib.domain.timeutil import format_ms, now_ms
from chalicelib.ports import MessageQueue, Repositories
from chalicelib.services import readings as services
from chalicelib.services.readings import IngestOutcome
from chalicelib.services.registry import KnownRooms
from chalicelib.settings import get_settings

# SQS: at most 10 entries and 256 KiB per SendMessageBatch (and per message).
SQS_BATCH_ENTRIES = 10
SQS_BATCH_BYTES = 256 * 1024
MESSAGE_BYTES = 240 * 1024  # margin for the batch's entry ids and attributes
READINGS_PER_MESSAGE = 100


def store(
    items: Sequence[Any],
    tenant: str,
    *,
    repos: Repositories | None = None,
    known: KnownRooms | None = None,
    deferred: RollupLedger | None = None,
) -> IngestOutcome:
    """Validate raw reading objects and store the valid ones once each, in `tenant`'s rooms.

    With `deferred`, the rollups of the touched minutes are left for `Writer.refresh`.
    """
    check_identifier(tenant, "tenant")
    if repos is None:
        from chalicelib.wiring import known_rooms, repositories

        repos, known = repositories(), known_rooms()
    found = repos.registry.get_tenant(tenant)
    if found is None or found.disabled:
        raise ValidationError(f"tenant {tenant} does not exist or is disabled")
    max_future_ms = get_settings().max_future_seconds * 1000
    return services.ingest_items(
        repos,
        items,
        tenant=tenant,
        now_ms=now_ms(),
        max_future_ms=max_future_ms,
        known=known,
        deferred=deferred,
    )


class Writer:
    """`store` bound to repositories (wiring's when none are given): what the queue consumer,
    the CLI and the benchmarks write through. Files use `deferred` and `refresh`, so that their
    rollups are recomputed in bulk rather than after every chunk."""

    def __init__(self, repos: Repositories | None = None, known: KnownRooms | None = None) -> None:
        self._repos = repos
        self._known = known

    def __call__(
        self, items: Sequence[Any], tenant: str, *, deferred: RollupLedger | None = None
    ) -> IngestOutcome:
        return store(items, tenant, repos=self._repos, known=self._known, deferred=deferred)

    def refresh(self, ledger: RollupLedger) -> None:
        """Bring the rollups of the ledger's minutes up to date (and clear it)."""
        if not ledger:
            return
        repos = self._repos
        if repos is None:
            from chalicelib.wiring import repositories

            repos = repositories()
        repos.readings.refresh_rollups(ledger)


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
