"""Report use cases against the in-memory fakes: never stuck, never computed twice."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rollup_reference import T0

from chalicelib.domain.errors import NotFoundError, StorageUnavailableError
from chalicelib.domain.models import Reading
from chalicelib.domain.registry import Building
from chalicelib.domain.reports import ReportSpec, ReportStatus
from chalicelib.services import reports as service
from tests.fakes import (
    InMemoryQueue,
    InMemoryReadingRepository,
    InMemoryRegistryRepository,
    InMemoryReportRepository,
)
from tests.streams import consume

DAY = 86_400_000
SPEC = ReportSpec(building="b1", from_ms=T0 - T0 % DAY, to_ms=T0 - T0 % DAY + DAY)


class BusyRepository(InMemoryReadingRepository):
    def rooms_of(self, tenant: str, building: str) -> list[str]:
        raise StorageUnavailableError("busy", 2)


class BrokenRepository(InMemoryReadingRepository):
    def rooms_of(self, tenant: str, building: str) -> list[str]:
        raise KeyError("a bug")


def registry_with(tenant: str, building: str) -> InMemoryRegistryRepository:
    registry = InMemoryRegistryRepository()
    registry.create_building(
        Building(building=building, tenant=tenant, name=building, metadata={}, created_ms=T0)
    )
    return registry


REGISTRY = registry_with("t1", "b1")


class DownQueue:
    def send(self, bodies: Any) -> None:
        raise StorageUnavailableError("queue down", 2)


def requested(reports: InMemoryReportRepository) -> str:
    queue = InMemoryQueue()
    report = service.request_report(reports, queue, SPEC, tenant="t1", now_ms=T0)
    assert [json.loads(b) for b in queue.bodies] == [{"id": report.id}]
    return report.id


def test_a_report_that_cannot_be_queued_is_failed_not_left_pending() -> None:
    reports = InMemoryReportRepository()
    with pytest.raises(StorageUnavailableError):
        service.request_report(reports, DownQueue(), SPEC, tenant="t1", now_ms=T0)
    (report,) = reports._reports.values()
    assert report.status is ReportStatus.FAILED


def test_a_busy_table_is_retried_by_the_queue_then_failed_at_the_last_delivery() -> None:
    reports = InMemoryReportRepository()
    report_id = requested(reports)
    for delivery in range(1, service.MAX_DELIVERIES):
        with pytest.raises(StorageUnavailableError):
            service.run_report(
                reports, BusyRepository(), REGISTRY, report_id, clock=lambda: T0, delivery=delivery
            )
        assert reports.get(report_id).status is ReportStatus.PENDING  # type: ignore[union-attr]
    service.run_report(
        reports,
        BusyRepository(),
        REGISTRY,
        report_id,
        clock=lambda: T0,
        delivery=service.MAX_DELIVERIES,
    )
    assert reports.get(report_id).status is ReportStatus.FAILED  # type: ignore[union-attr]


def test_a_bug_fails_the_report_with_a_reason() -> None:
    reports = InMemoryReportRepository()
    report_id = requested(reports)
    service.run_report(reports, BrokenRepository(), REGISTRY, report_id, clock=lambda: T0)
    report = reports.get(report_id)
    assert report is not None and report.status is ReportStatus.FAILED
    assert report.error == "internal error: KeyError"


def test_a_second_delivery_while_the_first_runs_is_handed_back_to_the_queue() -> None:
    reports = InMemoryReportRepository()
    report_id = requested(reports)
    reports.mark_running(report_id, T0)
    with pytest.raises(StorageUnavailableError):
        service.run_report(
            reports, InMemoryReadingRepository(), REGISTRY, report_id, clock=lambda: T0 + 1000
        )
    # after the lease, a new delivery takes over and completes it
    service.run_report(
        reports,
        InMemoryReadingRepository(),
        REGISTRY,
        report_id,
        clock=lambda: T0 + service.LEASE_MS,
    )
    assert reports.get(report_id).status is ReportStatus.COMPLETED  # type: ignore[union-attr]


def test_reports_of_another_tenant_are_not_found() -> None:
    reports = InMemoryReportRepository()
    report_id = requested(reports)
    with pytest.raises(NotFoundError):
        service.report_status(reports, report_id, tenant="someone-else", inline_bytes=10**6)


def test_a_report_of_a_building_deleted_before_it_ran_fails_and_reads_nothing() -> None:
    # Given a report asked for, then its building deleted (and its id reused by nobody yet)
    reports = InMemoryReportRepository()
    report_id = requested(reports)
    # When the worker runs it, with a repository that would fail loudly if read
    service.run_report(
        reports, BrokenRepository(), InMemoryRegistryRepository(), report_id, clock=lambda: T0
    )
    # Then the report failed, saying why, and no rollup was read
    report = reports.get(report_id)
    assert report is not None and report.status is ReportStatus.FAILED
    assert report.error == "building b1 no longer exists"


def test_a_report_runs_over_its_own_tenants_building_only() -> None:
    # Given two tenants with a building "b1" each, and readings in both
    repo = InMemoryReadingRepository()
    repo.put_readings(
        [
            Reading(tenant=t, building="b1", room="r1", sensor_id="s", ts_ms=T0, temperature=v)
            for t, v in (("t1", 20.0), ("t2", 90.0))
        ]
    )
    consume(repo)
    reports = InMemoryReportRepository()
    report_id = requested(reports)
    # When t1's report runs
    service.run_report(reports, repo, REGISTRY, report_id, clock=lambda: T0)
    # Then it holds t1's reading alone
    report = reports.get(report_id)
    assert report is not None and report.status is ReportStatus.COMPLETED
    result = reports.result(report_id)
    assert result is not None
    (room,) = result["rooms"]
    assert room["metrics"]["temperature"]["count"] == 1
    assert room["metrics"]["temperature"]["mean"] == 20.0


def test_report_rooms_and_building_match_their_readings() -> None:
    repo = InMemoryReadingRepository()
    repo.put_readings(
        [
            Reading(
                tenant="t",
                building="b1",
                room=room,
                sensor_id="s",
                ts_ms=T0 + i * 1000,
                temperature=t,
            )
            for i, (room, t) in enumerate([("r1", 20.0), ("r1", 22.0), ("r2", 30.0)])
        ]
    )
    consume(repo)
    built, text = service.build_report(repo, "t", SPEC)
    result = built.model_dump(mode="json", by_alias=True)
    r1, r2 = (r["metrics"]["temperature"] for r in result["rooms"])
    assert (r1["count"], r1["mean"], r2["count"]) == (2, 21.0, 1)
    building = result["building_stats"]["temperature"]
    assert building["mean"] == pytest.approx(24.0)
    assert building["mean_of_room_means"] == pytest.approx(25.5)
    assert text.splitlines()[0] == ",".join(service.CSV_COLUMNS)
