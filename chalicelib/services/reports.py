"""Report use cases: request one, run it (from the queue), read it back. No Chalice, no boto3."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import uuid
from collections.abc import Callable
from typing import Any

from chalicelib.domain.errors import NotFoundError, StorageUnavailableError
from chalicelib.domain.reports import Report, ReportSpec, ReportStatus
from chalicelib.domain.rollups import Rollup
from chalicelib.domain.timeutil import format_ms
from chalicelib.ports import ReportQueue, ReportRepository, RollupRepository
from chalicelib.services.analytics import (
    INTERVAL_MS,
    Interval,
    Stats,
    bucket_json,
    collect,
    combine_rooms,
    metric_unit,
    series_edges,
)

_log = logging.getLogger(__name__)
# A run older than this is presumed dead (its Lambda timed out) and may be taken over.
LEASE_MS = 15 * 60_000
# After this many deliveries a report that keeps hitting a busy table is marked failed, not stuck.
MAX_DELIVERIES = 5
CSV_COLUMNS = (
    "scope",
    "room",
    "metric",
    "unit",
    "period_start",
    "period_end",
    "count",
    "mean",
    "min",
    "max",
    "stddev",
    "minutes_below",
    "minutes_above",
)


def report_id_for(tenant: str, idempotency_key: str | None) -> str:
    """A fresh id, or one derived from the client's Idempotency-Key (a retried POST finds it)."""
    if idempotency_key is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"{tenant}\n{idempotency_key}".encode()).hexdigest()[:32]


def request_report(
    reports: ReportRepository,
    queue: ReportQueue,
    spec: ReportSpec,
    *,
    tenant: str,
    now_ms: int,
    idempotency_key: str | None = None,
) -> Report:
    """Store a pending report and queue its work; a retried request returns the same report."""
    report = Report(
        id=report_id_for(tenant, idempotency_key), tenant=tenant, spec=spec, created_ms=now_ms
    )
    if not reports.create(report):
        existing = reports.get(report.id)
        if existing is None or existing.tenant != tenant:
            raise NotFoundError("report not found")
        return existing
    try:
        queue.send({"id": report.id})
    except StorageUnavailableError:
        # Never leave a report pending that no worker will ever see.
        reports.fail(report.id, now_ms, "the report could not be queued; request it again")
        raise
    return report


def run_report(
    reports: ReportRepository,
    repo: RollupRepository,
    report_id: str,
    *,
    clock: Callable[[], int],
    delivery: int = 1,
) -> None:
    """Work one queue message. Safe to redeliver: a completed or failed report is left alone.

    A busy table (StorageUnavailableError) propagates so that the queue redelivers; any other
    error, or too many deliveries, marks the report failed, so that no report stays pending.
    """
    report = reports.get(report_id)
    if report is None or report.status in (ReportStatus.COMPLETED, ReportStatus.FAILED):
        return
    now = clock()
    if report.status is ReportStatus.RUNNING and (
        report.started_ms is not None and now - report.started_ms < LEASE_MS
    ):
        # Another delivery is working on it: let the queue bring this message back later.
        raise StorageUnavailableError("report is being computed by another worker", 60)
    reports.mark_running(report_id, now)
    try:
        result, text = build_report(repo, report.spec)
    except StorageUnavailableError:
        if delivery >= MAX_DELIVERIES:
            reports.fail(report_id, clock(), "the table stayed busy; request the report again")
            return
        # Give the lease back, so that the redelivery is not mistaken for a second worker.
        reports.release(report_id)
        raise
    except Exception as exc:  # a bug: record it on the report rather than retry forever
        _log.exception("report %s failed", report_id)
        reports.fail(report_id, clock(), f"internal error: {type(exc).__name__}")
        return
    reports.complete(report_id, clock(), result, text)


def build_report(repo: RollupRepository, spec: ReportSpec) -> tuple[dict[str, Any], str]:
    """Per-room and building statistics plus daily series, as JSON and as CSV text."""
    rooms = spec.rooms if spec.rooms is not None else repo.rooms_of(spec.building)
    starts, edges = series_edges(spec.from_ms, spec.to_ms, INTERVAL_MS[Interval.D1])
    unit = spec.unit
    days: dict[str, list[Rollup]] = {}
    for room in sorted(set(rooms)):
        days[room] = collect(repo, spec.building, room, edges)
    totals: dict[str, Rollup] = {}
    for room, buckets in days.items():
        totals[room] = Rollup()
        for bucket in buckets:
            totals[room].merge(bucket)
    rows: list[dict[str, Any]] = []
    room_results = []
    for room, buckets in days.items():
        metrics: dict[str, Any] = {}
        for metric in spec.metrics:
            band = spec.bands.get(metric)
            body = Stats.of(totals[room], metric).to_json(metric, unit, band)
            rows.append(_row("room", room, metric.value, metric_unit(metric, unit), spec, body))
            daily = [
                bucket_json(s, b.metric(metric), metric, unit)
                for s, b in zip(starts, buckets, strict=True)
            ]
            for day in daily:
                rows.append(_day_row(room, metric.value, metric_unit(metric, unit), day))
            metrics[metric.value] = {**body, "daily": daily}
        room_results.append({"room": room, "metrics": metrics})
    building: dict[str, Any] = {}
    for metric in spec.metrics:
        band = spec.bands.get(metric)
        per_room = {room: Stats.of(total, metric) for room, total in totals.items()}
        body = combine_rooms(per_room, metric, unit, band)
        daily_rollups = [Rollup() for _ in starts]
        for buckets in days.values():
            for index, bucket in enumerate(buckets):
                daily_rollups[index].merge(bucket)
        daily = [
            bucket_json(s, b.metric(metric), metric, unit)
            for s, b in zip(starts, daily_rollups, strict=True)
        ]
        building[metric.value] = {**body, "daily": daily}
        csv_body = {
            **body,
            "minutes_below": body["room_minutes_below"],
            "minutes_above": body["room_minutes_above"],
        }
        rows.append(_row("building", "", metric.value, metric_unit(metric, unit), spec, csv_body))
    result = {
        "building": spec.building,
        "from": format_ms(spec.from_ms),
        "to": format_ms(spec.to_ms),
        "unit": unit.value,
        "rooms": room_results,
        "building_stats": building,
        "notes": {
            "building mean": "every reading weighs the same; mean_of_room_means weighs rooms",
            "minutes_below/above": "whole UTC minutes whose mean is outside the band",
        },
    }
    return result, _csv(rows)


def _row(
    scope: str, room: str, metric: str, unit: str, spec: ReportSpec, body: dict[str, Any]
) -> dict[str, Any]:
    return {
        "scope": scope,
        "room": room,
        "metric": metric,
        "unit": unit,
        "period_start": format_ms(spec.from_ms),
        "period_end": format_ms(spec.to_ms),
        **{k: body.get(k) for k in CSV_COLUMNS[6:]},
    }


def _day_row(room: str, metric: str, unit: str, day: dict[str, Any]) -> dict[str, Any]:
    return {
        "scope": "room-day",
        "room": room,
        "metric": metric,
        "unit": unit,
        "period_start": day["start"],
        "count": day["count"],
        "mean": day["average"],
        "min": day["min"],
        "max": day["max"],
    }


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in CSV_COLUMNS})
    return out.getvalue()


def report_status(reports: ReportRepository, report_id: str, *, tenant: str) -> dict[str, Any]:
    """Status and timings; with the result and a CSV link once completed. 404 for others' ids."""
    report = reports.get(report_id)
    if report is None or report.tenant != tenant:
        raise NotFoundError("report not found")
    body = report.to_json()
    if report.status is ReportStatus.COMPLETED:
        body["result"] = reports.result(report_id)
        body["csv_url"] = reports.csv_link(report_id)
    return body
