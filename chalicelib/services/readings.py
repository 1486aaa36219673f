"""Use cases: plain functions over the repository port. No Chalice, no boto3."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.access import Principal
from chalicelib.domain.analytics import Presentation, check_window
from chalicelib.domain.errors import (
    ForbiddenError,
    MalformedRequestError,
    NotFoundError,
    ValidationError,
)
from chalicelib.domain.inputs import UNRESOLVED, ParsedBatch, Rejection, parse_items
from chalicelib.domain.models import (
    MAX_PAGE,
    Metric,
    Position,
    Reading,
    ReadingPage,
    WindowStats,
    WriteResult,
)
from chalicelib.domain.units import TemperatureUnit, from_celsius
from chalicelib.ports import ReadingRepository, RegistryRepository, Repositories
from chalicelib.services.registry import KnownRooms, resolve_rooms


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What happened to one request's readings."""

    accepted: int
    duplicates: int
    rejected: tuple[Rejection, ...]


def record_readings(
    repos: Repositories,
    tenant: str,
    batch: ParsedBatch,
    *,
    now_ms: int,
    known: KnownRooms | None = None,
    caller: Principal | None = None,
) -> IngestOutcome:
    """Place the valid readings in the tenant's rooms and store each once; report the rest
    (readings a bound key may not write among them)."""
    place_readings(repos.registry, tenant, batch, now_ms=now_ms, known=known, caller=caller)
    readings = batch.readings
    result = repos.readings.put_readings(readings) if readings else WriteResult()
    return IngestOutcome(result.accepted, result.duplicates, tuple(batch.rejected))


def place_readings(
    registry: RegistryRepository,
    tenant: str,
    batch: ParsedBatch,
    *,
    now_ms: int,
    known: KnownRooms | None = None,
    caller: Principal | None = None,
) -> None:
    """Put each valid reading of `batch` in its room of the tenant (created if new), rejecting
    those the caller's key is not bound to; what is left in `batch.readings` may be stored."""
    refuse_unbound(batch, caller)  # before a building named for the first time is created
    resolve_rooms(registry, tenant, batch, now_ms, known)
    refuse_unbound(batch, caller)  # sensor-only readings, now in their sensors' rooms


def refuse_unbound(batch: ParsedBatch, caller: Principal | None) -> None:
    """Reject the readings of `batch` that the caller's key is not bound to (403 each)."""
    if caller is None or (caller.buildings is None and caller.sensors is None):
        return
    for index, reading in list(zip(batch.positions, batch.readings, strict=True)):
        if reading.building == UNRESOLVED:
            continue  # its room comes from its sensor: checked once resolved
        reason = caller.refuses(reading.building, reading.sensor_id)
        if reason is not None:
            batch.reject(index, ForbiddenError, reason)


def ingest_items(
    repos: Repositories,
    items: Sequence[Any],
    *,
    tenant: str,
    now_ms: int,
    max_future_ms: int,
    known: KnownRooms | None = None,
) -> IngestOutcome:
    """Validate raw reading objects (from any ingest path) and store the valid ones once each."""
    batch = parse_items(items, now_ms, max_future_ms)
    return record_readings(repos, tenant, batch, now_ms=now_ms, known=known)


def summarize(
    readings: Sequence[Reading], metric: Metric, unit: TemperatureUnit
) -> tuple[int, float | None, float | None, float | None]:
    """Count, mean, min and max of `metric` over the readings that measured it, in `unit`."""
    values = [v for r in readings if (v := r.value(metric)) is not None]
    if not values:
        return 0, None, None, None
    mean = math.fsum(values) / len(values)
    low, high = min(values), max(values)
    if metric is Metric.TEMPERATURE and unit is not TemperatureUnit.C:
        mean, low, high = (from_celsius(x, unit) for x in (mean, low, high))
    return len(values), mean, low, high


def window_average(
    repo: ReadingRepository,
    tenant: str,
    building: str,
    room: str,
    *,
    metric: Metric,
    minutes: int,
    at_ms: int,
    unit: TemperatureUnit = TemperatureUnit.C,
) -> WindowStats:
    """Average, min and max of one metric of a room over the window (at - minutes, at]."""
    check_window(minutes)
    start_ms = at_ms - minutes * 60_000
    readings = repo.window(tenant, building, room, start_ms, at_ms, metric)
    count, mean, low, high = summarize(readings, metric, unit)
    return WindowStats(
        building=building,
        room=room,
        metric=metric,
        unit=Presentation(metric, unit).unit_name,
        window_start=start_ms,
        window_end=at_ms,
        count=count,
        average=mean,
        min=low,
        max=high,
    )


def latest_reading(repo: ReadingRepository, tenant: str, building: str, room: str) -> Reading:
    """The room's most recent reading; NotFoundError when it has none."""
    reading = repo.latest(tenant, building, room)
    if reading is None:
        raise NotFoundError(f"room {building}/{room} has no readings")
    return reading


def list_readings(
    repo: ReadingRepository,
    tenant: str,
    building: str,
    room: str,
    *,
    from_ms: int,
    to_ms: int,
    limit: int,
    after: Position | None,
) -> ReadingPage:
    """One page of the room's readings in [from, to), ascending by timestamp then sensor."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit: must be an integer from 1 to {MAX_PAGE}")
    if from_ms >= to_ms:
        raise ValidationError("from: must be before to")
    if after is not None and not from_ms <= after.ts_ms < to_ms:
        raise MalformedRequestError("cursor: does not belong to this range")
    items, more = repo.page(tenant, building, room, from_ms, to_ms, limit, after)
    next_after = None
    if more and items:
        last = items[-1]
        next_after = Position(ts_ms=last.ts_ms, sensor_id=last.sensor_id)
    return ReadingPage(items=tuple(items), next_after=next_after)
