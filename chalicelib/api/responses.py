"""Response bodies as pydantic models: they document the API (/openapi.json), the views build dicts.

tests/api/test_openapi.py validates real answers against these models, so they cannot drift.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.inputs import ReadingIn


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class ErrorBody(_Out):
    """Every error answer: a machine-readable code and a human-readable message."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"Code": "NotFound", "Message": "room b1/r1 does not exist"}]
        },
    )

    Code: str = Field(description="e.g. ValidationError, NotFound, Unauthenticated")
    Message: str


class Health(_Out):
    status: str = Field(examples=["ok"])


class ReadingBatchIn(BaseModel):
    """A batch of 1-1000 readings; each is validated on its own (207 lists the rejected ones)."""

    model_config = ConfigDict(extra="forbid")

    readings: list[ReadingIn] = Field(min_length=1, max_length=1000)


class RejectedReading(_Out):
    index: int = Field(description="position of the reading in the request's `readings`")
    Code: str
    Message: str


class IngestResult(_Out):
    """What a POST /readings did: stored now, already stored (a retry), rejected."""

    accepted: int
    duplicates: int
    rejected: list[RejectedReading]


class QueuedResult(_Out):
    """What a POST /readings?async=true did: readings queued for the ingest handler, rejected."""

    queued: int
    rejected: list[RejectedReading]


class ReadingOut(_Out):
    building: str
    room: str
    sensor_id: str
    timestamp: str = Field(examples=["2026-11-25T10:15:00.000Z"])
    temperature: float | None
    unit: str = Field(description="unit of `temperature`: C, F or K")
    humidity: float | None
    co2: float | None


class ReadingsPage(_Out):
    items: list[ReadingOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null: last")


class WindowAverage(_Out):
    """Statistics of one metric over the window (window_start, window_end]."""

    building: str
    room: str
    metric: str
    unit: str
    window_start: str
    window_end: str
    count: int
    average: float | None
    min: float | None
    max: float | None


class BuildingOut(_Out):
    building: str
    name: str
    metadata: dict[str, Any]
    created_at: str


class BuildingsPage(_Out):
    items: list[BuildingOut]
    next_cursor: str | None


class RoomOut(_Out):
    building: str
    room: str
    name: str
    metadata: dict[str, Any]
    created_at: str


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
    created_at: str


class SensorsPage(_Out):
    items: list[SensorOut]
    next_cursor: str | None


class KeyOut(_Out):
    key_id: str
    tenant: str | None
    scopes: list[str]
    name: str
    created_at: str
    expires_at: str | None
    revoked: bool


class KeyCreated(KeyOut):
    key: str = Field(description="the secret: shown in this answer only")


class KeysPage(_Out):
    items: list[KeyOut]
    next_cursor: str | None


class TenantOut(_Out):
    tenant: str
    name: str
    disabled: bool
    created_at: str


class TenantsPage(_Out):
    items: list[TenantOut]
    next_cursor: str | None


class ReportAccepted(_Out):
    """POST /reports: the report's id (poll GET /reports/{id}) and its status."""

    id: str
    status: str = Field(examples=["pending"])
