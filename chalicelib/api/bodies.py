"""Request bodies (pydantic: the same models validate and feed /openapi.json)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.access import Scope
from chalicelib.domain.analytics import Band
from chalicelib.domain.inputs import MAX_BATCH, Identifier, ReadingIn
from chalicelib.domain.models import Metric
from chalicelib.domain.units import TemperatureUnit


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReadingBatchIn(BaseModel):
    """A batch of 1-1000 readings; each is validated on its own (207 lists the rejected ones)."""

    model_config = ConfigDict(extra="forbid")

    readings: list[ReadingIn] = Field(min_length=1, max_length=MAX_BATCH)


class BuildingIn(_Body):
    building: Identifier
    name: str | None = Field(default=None, min_length=1, max_length=200)
    metadata: dict[str, Any] | None = None


class RoomIn(_Body):
    room: Identifier
    name: str | None = Field(default=None, min_length=1, max_length=200)
    metadata: dict[str, Any] | None = None


class SensorIn(_Body):
    sensor_id: Identifier
    name: str | None = Field(default=None, min_length=1, max_length=200)
    metadata: dict[str, Any] | None = None
    building: Identifier | None = None
    room: Identifier | None = None


class PatchIn(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    metadata: dict[str, Any] | None = None


class AssignIn(_Body):
    building: Identifier
    room: Identifier


class KeyIn(_Body):
    scopes: list[Scope] = Field(min_length=1, description="at most the scopes of the calling key")
    name: str = Field(default="", max_length=200)
    expires_at: str | None = Field(default=None, description="ISO 8601 with offset")
    buildings: list[Identifier] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="bind the key to these buildings of the tenant (default: all)",
    )
    sensors: list[Identifier] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="bind the key to these sensor ids: it writes no other sensor's readings",
    )


class TenantIn(_Body):
    tenant: Identifier
    name: str | None = Field(default=None, min_length=1, max_length=200)


class TenantPatch(_Body):
    disabled: bool


class ReportIn(_Body):
    """POST /reports (documentation; the view's parse_spec validates it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    building: Identifier
    rooms: list[Identifier] | None = Field(default=None, description="default: every room")
    from_: str = Field(alias="from", description="ISO 8601 with offset, inclusive")
    to: str = Field(description="ISO 8601 with offset, exclusive")
    metrics: list[Metric] | None = Field(default=None, description="default: all three")
    unit: TemperatureUnit = TemperatureUnit.C
    bands: dict[Metric, Band] | None = Field(default=None, description="comfort band per metric")
    low: float | None = Field(default=None, description="temperature band shorthand: low")
    high: float | None = Field(default=None, description="temperature band shorthand: high")


def changes_of(patch: PatchIn) -> dict[str, Any]:
    """The fields a PATCH body actually sets."""
    return {name: getattr(patch, name) for name in patch.model_fields_set}
