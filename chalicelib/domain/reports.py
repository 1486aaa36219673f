"""Reports: what a client asks for, and the status item that tracks the asynchronous work."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chalicelib.domain.inputs import IDENTIFIER_PATTERN
from chalicelib.domain.models import Metric
from chalicelib.domain.timeutil import format_ms
from chalicelib.domain.units import TemperatureUnit

MAX_REPORT_DAYS = 92
MAX_REPORT_ROOMS = 500
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN, strict=True)]
Bound = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class ReportStatus(StrEnum):
    """Where a report is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class Band(BaseModel):
    """A comfort band of one metric: time below `low` and above `high` is reported."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: Bound | None = None
    high: Bound | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError("low must not exceed high")
        return self


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

    def to_json(self) -> dict[str, Any]:
        """Status and timings as the API shows them (the result is added by the caller)."""
        spec = self.spec
        duration = None
        if self.started_ms is not None and self.finished_ms is not None:
            duration = self.finished_ms - self.started_ms
        return {
            "id": self.id,
            "status": self.status.value,
            "building": spec.building,
            "rooms": spec.rooms,
            "from": format_ms(spec.from_ms),
            "to": format_ms(spec.to_ms),
            "metrics": [m.value for m in spec.metrics],
            "unit": spec.unit.value,
            "bands": {m.value: b.model_dump() for m, b in spec.bands.items()},
            "created_at": format_ms(self.created_ms),
            "started_at": None if self.started_ms is None else format_ms(self.started_ms),
            "finished_at": None if self.finished_ms is None else format_ms(self.finished_ms),
            "duration_ms": duration,
            "error": self.error,
        }
