"""Reports: what a client asks for, and the status item that tracks the asynchronous work."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chalicelib.domain.analytics import (
    AS_OF,
    Answer,
    Band,
    Bucket,
    BuildingSummary,
    PeriodStats,
)
from chalicelib.domain.inputs import IDENTIFIER_PATTERN
from chalicelib.domain.models import Metric
from chalicelib.domain.timeutil import Timestamp
from chalicelib.domain.units import TemperatureUnit

MAX_REPORT_DAYS = 92
MAX_REPORT_ROOMS = 500
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN, strict=True)]


class ReportStatus(StrEnum):
    """Where a report is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class ReportSpec(BaseModel):
    """What a report covers; validated at POST, carried in the queue message, stored as is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    building: Identifier
    rooms: Annotated[list[Identifier], Field(max_length=MAX_REPORT_ROOMS)] | None = None
    from_ms: int
    to_ms: int
    metrics: list[Metric] = Field(default_factory=lambda: list(Metric), min_length=1)
    unit: TemperatureUnit = TemperatureUnit.C
    # Comfort bands per metric, in the metric's reporting unit (temperature: `unit`).
    bands: dict[Metric, Band] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _period(self) -> ReportSpec:
        if self.from_ms >= self.to_ms:
            raise ValueError("from must be before to")
        if self.to_ms - self.from_ms > MAX_REPORT_DAYS * 86_400_000:
            raise ValueError(f"a report covers at most {MAX_REPORT_DAYS} days")
        return self


class Report(BaseModel):
    """The status item of one report."""

    model_config = ConfigDict(frozen=True)

    id: str
    tenant: str
    spec: ReportSpec
    status: ReportStatus = ReportStatus.PENDING
    created_ms: int
    started_ms: int | None = None
    finished_ms: int | None = None
    error: str | None = None
    result_bytes: int | None = None  # the completed result's size (large ones go by link)
    summary: ReportSummary | None = None


class MetricReport(PeriodStats):
    """One metric of one room over the report's period, and its daily buckets."""

    daily: list[Bucket]


class RoomReport(Answer):
    """One room of a report."""

    room: str
    as_of: Timestamp | None = Field(description=AS_OF)
    metrics: dict[Metric, MetricReport]


class BuildingMetricReport(BuildingSummary):
    """One metric over the whole building, and its daily buckets."""

    daily: list[Bucket]


class ReportResult(Answer):
    """A completed report: per room and for the building, each metric's statistics and days."""

    building: str
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    unit: TemperatureUnit
    as_of: Timestamp | None = Field(description=AS_OF + " (the least of its rooms')")
    rooms: list[RoomReport]
    building_stats: dict[Metric, BuildingMetricReport]
    notes: dict[str, str]


class ReportSummary(Answer):
    """A completed report at a glance (kept with its status, so always answered inline)."""

    building: str
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    unit: TemperatureUnit
    as_of: Timestamp | None = Field(description=AS_OF + " (the least of its rooms')")
    rooms: int = Field(description="rooms in the report")
    building_stats: dict[Metric, BuildingSummary]

    @classmethod
    def of(cls, result: ReportResult) -> ReportSummary:
        """The summary of a result: its heading and the building's statistics."""
        return cls(
            building=result.building,
            from_=result.from_,
            to=result.to,
            unit=result.unit,
            as_of=result.as_of,
            rooms=len(result.rooms),
            building_stats={
                metric: BuildingSummary(**stats.model_dump(exclude={"daily"}))
                for metric, stats in result.building_stats.items()
            },
        )


Report.model_rebuild()
