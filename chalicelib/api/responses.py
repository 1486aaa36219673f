"""Every answer's shape, once: the pydantic models the views return (and /openapi.json shows).

Analytics answers are the domain's own models (chalicelib/domain/analytics.py); the rest are
built here from domain objects by their `of` constructors. tests/api/test_openapi.py and the
schema fuzz check real answers against these schemas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.access import ApiKey
from chalicelib.domain.analytics import BuildingAverage, BuildingStats, RoomStats, Series
from chalicelib.domain.inputs import Rejection
from chalicelib.domain.models import Reading, WindowStats
from chalicelib.domain.registry import Building, Room, Sensor, Tenant
from chalicelib.domain.reports import ReportResult, ReportSummary
from chalicelib.domain.timeutil import Timestamp
from chalicelib.domain.units import TemperatureUnit, from_celsius
from chalicelib.services.readings import IngestOutcome
from chalicelib.services.reports import ReportView

__all__ = [
    "BuildingAverage",
    "BuildingStats",
    "RoomStats",
    "Series",
    "WindowAverage",
]

# The 15-minute average and its relatives: the domain's WindowStats is the answer.
WindowAverage = WindowStats


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ErrorBody(_Out):
    """Every error answer: a machine-readable code and a human-readable message."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"Code": "NotFound", "Message": "room b1/r1 does not exist"}]
        },
    )

    Code: str = Field(description="e.g. ValidationError, NotFound, Unauthorized")
    Message: str


class Health(_Out):
    status: str = Field(examples=["ok"])
    checks: dict[str, str] = Field(
        description="each resource probed (table, bucket, queues) and its state",
        examples=[{"table": "ok", "bucket": "ok", "ingest_queue": "ok", "reports_queue": "ok"}],
    )


# -- readings ----------------------------------------------------------------------------------


class RejectedReading(_Out):
    index: int = Field(description="position of the reading in the request's `readings`")
    Code: str
    Message: str

    @classmethod
    def of(cls, rejection: Rejection) -> RejectedReading:
        return cls(index=rejection.index, Code=rejection.code, Message=rejection.message)


def rejected(rejections: Sequence[Rejection]) -> list[RejectedReading]:
    """The `rejected` list of an ingest answer."""
    return [RejectedReading.of(r) for r in rejections]


class IngestResult(_Out):
    """What a POST /readings did: stored now, already stored (a retry), rejected."""

    accepted: int
    duplicates: int
    rejected: list[RejectedReading]

    @classmethod
    def of(cls, outcome: IngestOutcome) -> IngestResult:
        return cls(
            accepted=outcome.accepted,
            duplicates=outcome.duplicates,
            rejected=rejected(outcome.rejected),
        )


class NothingStored(ErrorBody):
    """The 422 of a batch whose every reading was invalid: an ErrorBody with its counts and
    rejections (nothing was stored)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    accepted: int
    duplicates: int
    rejected: list[RejectedReading]


class NothingQueued(ErrorBody):
    """The 422 of an async batch whose every reading was invalid (nothing was queued)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    queued: int
    rejected: list[RejectedReading]


class QueuedResult(_Out):
    """What a POST /readings?async=true did: readings queued for the ingest handler, rejected."""

    queued: int
    rejected: list[RejectedReading]


class ReadingOut(_Out):
    building: str
    room: str
    sensor_id: str
    timestamp: Timestamp = Field(examples=["2026-11-25T10:15:00.000Z"])
    temperature: float | None
    unit: TemperatureUnit = Field(description="unit of `temperature`: C, F or K")
    humidity: float | None
    co2: float | None

    @classmethod
    def of(cls, reading: Reading, unit: TemperatureUnit = TemperatureUnit.C) -> ReadingOut:
        """The reading as the API shows it, temperature in `unit`."""
        temperature = reading.temperature
        return cls(
            building=reading.building,
            room=reading.room,
            sensor_id=reading.sensor_id,
            timestamp=reading.ts_ms,
            temperature=None if temperature is None else from_celsius(temperature, unit),
            unit=unit,
            humidity=reading.humidity,
            co2=reading.co2,
        )


class ReadingsPage(_Out):
    items: list[ReadingOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null: last")


# -- registry ----------------------------------------------------------------------------------


class BuildingOut(_Out):
    building: str
    name: str
    metadata: dict[str, Any]
    created_at: Timestamp

    @classmethod
    def of(cls, building: Building) -> BuildingOut:
        return cls(
            building=building.building,
            name=building.name,
            metadata=building.metadata,
            created_at=building.created_ms,
        )


class BuildingsPage(_Out):
    items: list[BuildingOut]
    next_cursor: str | None


class RoomOut(_Out):
    building: str
    room: str
    name: str
    metadata: dict[str, Any]
    created_at: Timestamp

    @classmethod
    def of(cls, room: Room) -> RoomOut:
        return cls(
            building=room.building,
            room=room.room,
            name=room.name,
            metadata=room.metadata,
            created_at=room.created_ms,
        )


class RoomSummary(RoomOut):
    """A room with its latest reading and its 15-minute temperature average."""

    latest: ReadingOut | None
    average_15m: WindowAverage


class RoomsPage(_Out):
    items: list[RoomSummary]
    next_cursor: str | None


class SensorOut(_Out):
    sensor_id: str
    name: str
    metadata: dict[str, Any]
    building: str | None
    room: str | None
    created_at: Timestamp

    @classmethod
    def of(cls, sensor: Sensor) -> SensorOut:
        return cls(
            sensor_id=sensor.sensor_id,
            name=sensor.name,
            metadata=sensor.metadata,
            building=sensor.building,
            room=sensor.room,
            created_at=sensor.created_ms,
        )


class SensorsPage(_Out):
    items: list[SensorOut]
    next_cursor: str | None


# -- access ------------------------------------------------------------------------------------


class KeyOut(_Out):
    key_id: str
    tenant: str | None
    scopes: list[str]
    name: str
    created_at: Timestamp
    expires_at: Timestamp | None
    revoked: bool
    buildings: list[str] | None = Field(description="the buildings it is bound to (null: all)")
    sensors: list[str] | None = Field(description="the sensors it is bound to (null: all)")

    @classmethod
    def fields_of(cls, key: ApiKey) -> dict[str, Any]:
        return {
            "key_id": key.key_id,
            "tenant": key.tenant,
            "scopes": sorted(s.value for s in key.scopes),
            "name": key.name,
            "created_at": key.created_ms,
            "expires_at": key.expires_ms,
            "revoked": key.revoked_ms is not None,
            "buildings": None if key.buildings is None else sorted(key.buildings),
            "sensors": None if key.sensors is None else sorted(key.sensors),
        }

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        """A key as GET /keys shows it: no secret, no hash."""
        return cls(**cls.fields_of(key))


class KeyCreated(KeyOut):
    key: str = Field(description="the secret: shown in this answer only")

    @classmethod
    def created(cls, key: ApiKey, token: str) -> KeyCreated:
        return cls(**KeyOut.fields_of(key), key=token)


class KeysPage(_Out):
    items: list[KeyOut]
    next_cursor: str | None


class TenantOut(_Out):
    tenant: str
    name: str
    disabled: bool
    created_at: Timestamp

    @classmethod
    def of(cls, tenant: Tenant) -> TenantOut:
        return cls(
            tenant=tenant.tenant,
            name=tenant.name,
            disabled=tenant.disabled,
            created_at=tenant.created_ms,
        )


class TenantsPage(_Out):
    items: list[TenantOut]
    next_cursor: str | None


# -- reports -----------------------------------------------------------------------------------


class ReportAccepted(_Out):
    """POST /reports: the report's id (poll GET /reports/{id}) and its status."""

    id: str
    status: str = Field(examples=["pending"])


class ReportOut(_Out):
    """A report's status and timings; once completed, its result and a link to its CSV copy."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        defer_build=True,
        validate_by_name=True,
        serialize_by_alias=True,
    )

    id: str
    status: str
    building: str
    rooms: list[str] | None
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    metrics: list[str]
    unit: str
    bands: dict[str, dict[str, float | None]]
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    duration_ms: int | None
    error: str | None
    summary: ReportSummary | None = Field(description="once completed: the report at a glance")
    result: ReportResult | None = Field(
        description="once completed, if small enough; else fetch `result_url`"
    )
    result_url: str | None = Field(description="once completed: the JSON result (1 hour)")
    csv_url: str | None = Field(description="once completed: the CSV copy (1 hour)")

    @classmethod
    def of(cls, view: ReportView) -> ReportOut:
        report = view.report
        spec = report.spec
        duration = None
        if report.started_ms is not None and report.finished_ms is not None:
            duration = report.finished_ms - report.started_ms
        return cls(
            id=report.id,
            status=report.status.value,
            building=spec.building,
            rooms=spec.rooms,
            from_=spec.from_ms,
            to=spec.to_ms,
            metrics=[m.value for m in spec.metrics],
            unit=spec.unit.value,
            bands={m.value: b.model_dump() for m, b in spec.bands.items()},
            created_at=report.created_ms,
            started_at=report.started_ms,
            finished_at=report.finished_ms,
            duration_ms=duration,
            error=report.error,
            summary=report.summary,
            result=view.result,
            result_url=view.result_url,
            csv_url=view.csv_url,
        )
