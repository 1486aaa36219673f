"""Report use cases: request one, run it (from the queue), read it back. No Chalice, no boto3."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib import observability
from chalicelib.domain.analytics import (
    INTERVAL_MS,
    Bucket,
    BuildingSummary,
    Interval,
    Presentation,
    least_as_of,
    series_edges,
)
from chalicelib.domain.errors import NotFoundError, StorageUnavailableError
from chalicelib.domain.models import Metric
from chalicelib.domain.reports import (
    BuildingMetricReport,
    MetricReport,
    Report,
    ReportResult,
    ReportSpec,
    ReportStatus,
    ReportSummary,
    RoomReport,
)
from chalicelib.domain.rollups import Rollup
from chalicelib.domain.timeutil import format_ms
from chalicelib.ports import MessageQueue, RegistryRepository, ReportRepository, RollupRepository
from chalicelib.services.analytics import collect, period_stats

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
    queue: MessageQueue,
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
        queue.send([json.dumps({"id": report.id})])
    except StorageUnavailableError:
        # Never leave a report pending that no worker will ever see.
        reports.fail(report.id, now_ms, "the report could not be queued; request it again")
        raise
    return report


def run_report(
    reports: ReportRepository,
    repo: RollupRepository,
    registry: RegistryRepository,
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
    # Whose building is it now? Checked when the work runs, not only when it was asked for.
    if registry.get_building(report.tenant, report.spec.building) is None:
        reports.fail(report_id, now, f"building {report.spec.building} no longer exists")
        return
    reports.mark_running(report_id, now)
    try:
        result, text = build_report(repo, report.tenant, report.spec)
    except StorageUnavailableError:
        if delivery >= MAX_DELIVERIES:
            reports.fail(report_id, clock(), "the table stayed busy; request the report again")
            return
        # Give the lease back, so that the redelivery is not mistaken for a second worker.
        reports.release(report_id)
        raise
    except Exception as exc:  # a bug: record it on the report rather than retry forever
        observability.logger().exception("report failed", report_id=report_id)
        reports.fail(report_id, clock(), f"internal error: {type(exc).__name__}")
        return
    reports.complete(
        report_id,
        clock(),
        result.model_dump(mode="json"),
        text,
        ReportSummary.of(result).model_dump(mode="json"),
    )


def build_report(repo: RollupRepository, tenant: str, spec: ReportSpec) -> tuple[ReportResult, str]:
    """Per-room and building statistics plus daily series, and the same as CSV text."""
    rooms = spec.rooms if spec.rooms is not None else repo.rooms_of(tenant, spec.building)
    starts, edges = series_edges(spec.from_ms, spec.to_ms, INTERVAL_MS[Interval.D1])
    days = {room: collect(repo, tenant, spec.building, room, edges) for room in sorted(set(rooms))}
    totals: dict[str, Rollup] = {}
    for room, buckets in days.items():
        totals[room] = Rollup()
        for bucket in buckets:
            totals[room].merge(bucket)
    daily_totals = [Rollup() for _ in starts]
    for buckets in days.values():
        for index, bucket in enumerate(buckets):
            daily_totals[index].merge(bucket)
    shown = {metric: Presentation(metric, spec.unit) for metric in spec.metrics}
    fresh = {room: repo.freshness(tenant, spec.building, room) for room in days}

    def daily(buckets: list[Rollup], metric: Metric) -> list[Bucket]:
        return [
            Bucket.of(s, b.metric(metric), shown[metric])
            for s, b in zip(starts, buckets, strict=True)
        ]

    result = ReportResult(
        building=spec.building,
        from_=spec.from_ms,
        to=spec.to_ms,
        unit=spec.unit,
        as_of=least_as_of(fresh.values()),
        rooms=[
            RoomReport(
                room=room,
                as_of=fresh[room],
                metrics={
                    metric: MetricReport(
                        **period_stats(
                            totals[room], metric, shown[metric], spec.bands.get(metric)
                        ).model_dump(),
                        daily=daily(buckets, metric),
                    )
                    for metric in spec.metrics
                },
            )
            for room, buckets in days.items()
        ],
        building_stats={
            metric: BuildingMetricReport(
                **BuildingSummary.of(
                    (
                        (total.metric(metric), total.minute_means.get(metric, ()))
                        for total in totals.values()
                    ),
                    shown[metric],
                    spec.bands.get(metric),
                ).model_dump(),
                daily=daily(daily_totals, metric),
            )
            for metric in spec.metrics
        },
        notes={
            "building mean": "every reading weighs the same; mean_of_room_means weighs rooms",
            "minutes_below/above": "whole UTC minutes whose mean is outside the band",
        },
    )
    return result, report_csv(result)


def report_csv(result: ReportResult) -> str:
    """The report as CSV: a row per room and metric, per room, metric and day, per metric."""
    period = (format_ms(result.from_), format_ms(result.to))
    rows: list[dict[str, Any]] = []
    for room in result.rooms:
        for metric, body in room.metrics.items():
            unit = Presentation(metric, result.unit).unit_name
            rows.append(_row("room", room.room, metric, unit, period, body.model_dump()))
            for day in body.daily:
                rows.append(_day_row(room.room, metric, unit, day))
    for metric, summary in result.building_stats.items():
        unit = Presentation(metric, result.unit).unit_name
        fields = summary.model_dump()
        fields["minutes_below"] = summary.room_minutes_below
        fields["minutes_above"] = summary.room_minutes_above
        rows.append(_row("building", "", metric, unit, period, fields))
    return _csv(rows)


def _row(
    scope: str,
    room: str,
    metric: Metric,
    unit: str,
    period: tuple[str, str],
    body: dict[str, Any],
) -> dict[str, Any]:
    return {
        "scope": scope,
        "room": room,
        "metric": metric.value,
        "unit": unit,
        "period_start": period[0],
        "period_end": period[1],
        **{k: body.get(k) for k in CSV_COLUMNS[6:]},
    }


def _day_row(room: str, metric: Metric, unit: str, day: Bucket) -> dict[str, Any]:
    return {
        "scope": "room-day",
        "room": room,
        "metric": metric.value,
        "unit": unit,
        "period_start": format_ms(day.start),
        "count": day.count,
        "mean": day.average,
        "min": day.min,
        "max": day.max,
    }


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in CSV_COLUMNS})
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class ReportView:
    """A report as its owner sees it: status and timings; once completed, its summary and links
    to its JSON result and CSV copy, and the result itself when it is small enough."""

    report: Report
    result: ReportResult | None = None
    result_url: str | None = None
    csv_url: str | None = None


def report_status(
    reports: ReportRepository, report_id: str, *, tenant: str, inline_bytes: int
) -> ReportView:
    """The report, with its links once completed (and its result inline if at most
    `inline_bytes`: a Lambda answer stops at 6 MB); 404 for others' ids."""
    report = reports.get(report_id)
    if report is None or report.tenant != tenant:
        raise NotFoundError("report not found")
    if report.status is not ReportStatus.COMPLETED:
        return ReportView(report)
    result = None
    if report.result_bytes is not None and report.result_bytes <= inline_bytes:
        stored = reports.result(report_id)
        result = None if stored is None else ReportResult.model_validate(stored)
    return ReportView(report, result, reports.result_link(report_id), reports.csv_link(report_id))
