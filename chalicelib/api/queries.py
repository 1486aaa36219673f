"""Query-string parameters: one pydantic model per route, which also documents them (/openapi.json).

Values arrive as text; a bad one is a 422 naming the parameter. Unknown parameters are ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from chalicelib.domain.analytics import MAX_WINDOW_MINUTES, Band, Interval
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import MAX_PAGE, Metric
from chalicelib.domain.timeutil import parse_iso
from chalicelib.domain.units import TemperatureUnit

Q = TypeVar("Q", bound="Query")


def _instant(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return parse_iso(value, "")
    except ValidationError as exc:
        raise ValueError(exc.message.removeprefix(": ")) from None


# An ISO 8601 instant with an offset or Z, as epoch milliseconds.
Instant = Annotated[
    int,
    BeforeValidator(_instant),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-11-25T10:00:00Z"]}),
]
Finite = Annotated[float, Field(allow_inf_nan=False)]


def _flag(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


Flag = Annotated[Literal["true", "false"], BeforeValidator(_flag)]


class Query(BaseModel):
    """Base of the query models."""

    model_config = ConfigDict(extra="ignore", frozen=True, validate_by_name=True)


class UnitQuery(Query):
    unit: TemperatureUnit = Field(TemperatureUnit.C, description="temperature unit of the answer")


class AverageQuery(UnitQuery):
    metric: Metric = Field(Metric.TEMPERATURE, description="what to average")
    minutes: int = Field(15, ge=1, le=MAX_WINDOW_MINUTES, description="window length")
    at: Instant | None = Field(None, description="end of the window, inclusive (default: now)")


class ReadingsQuery(UnitQuery):
    from_: Instant | None = Field(
        None, alias="from", description="first instant, inclusive (default: 24 h ago)"
    )
    to: Instant | None = Field(None, description="end, exclusive (default: now)")
    limit: int = Field(100, ge=1, le=MAX_PAGE, description="page size")
    cursor: str | None = Field(None, description="`next_cursor` of the previous page")


class PostReadingsQuery(Query):
    async_: Flag = Field(
        "false", alias="async", description="true: validate and queue, store later"
    )


class PeriodQuery(UnitQuery):
    from_: Instant | None = Field(
        None, alias="from", description="start (inclusive); default: 24 h before `to`"
    )
    to: Instant | None = Field(None, description="end (exclusive); default: now")
    metric: Metric = Field(Metric.TEMPERATURE, description="which metric")


class SeriesQuery(PeriodQuery):
    interval: Interval = Field(Interval.H1, description="bucket width")


class StatsQuery(PeriodQuery):
    low: Finite | None = Field(None, description="comfort band: minutes below count")
    high: Finite | None = Field(None, description="comfort band: minutes above count")

    @model_validator(mode="after")
    def _ordered(self) -> StatsQuery:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError("low: must not exceed high")
        return self

    @property
    def band(self) -> Band | None:
        """The comfort band (either edge may be absent), or None."""
        if self.low is None and self.high is None:
            return None
        return Band(low=self.low, high=self.high)


class BuildingAverageQuery(UnitQuery):
    metric: Metric = Field(Metric.TEMPERATURE, description="which metric")
    minutes: int = Field(15, ge=1, le=MAX_WINDOW_MINUTES, description="window")
    at: Instant | None = Field(None, description="end of the window (inclusive); default: now")


class PageQuery(Query):
    limit: int = Field(50, ge=1, le=100, description="page size")
    cursor: str | None = Field(None, description="`next_cursor` of the previous page")


class ForceQuery(Query):
    force: Flag = Field("false", description="true: delete the readings too")
