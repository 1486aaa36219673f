"""Validation of readings as clients send them, shared by every ingest path (HTTP, S3, SQS)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, NoReturn

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    TypeAdapter,
)
from pydantic import ValidationError as PydanticValidationError

from chalicelib.domain.errors import (
    DomainError,
    MalformedRequestError,
    PayloadTooLargeError,
    ValidationError,
)
from chalicelib.domain.models import Reading
from chalicelib.domain.timeutil import parse_epoch, parse_iso
from chalicelib.domain.units import ABSOLUTE_ZERO_C, TemperatureUnit, to_celsius

IDENTIFIER_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
_IDENTIFIER_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_BATCH = 1000
MAX_TEMPERATURE_C = 1000.0
DEFAULT_SENSOR = "default"
UNRESOLVED = ""

Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN, strict=True)]
Number = Annotated[float, Field(strict=True)]


# Longer integers than any reading field can hold (and than int() takes from text by default).
MAX_INTEGER_DIGITS = 100


def _integer(text: str) -> Any:
    # Left as text when absurdly long: the one value is then rejected, not the whole body.
    return int(text) if len(text.lstrip("-")) <= MAX_INTEGER_DIGITS else text


def load_json(text: str | bytes) -> Any:
    """JSON from a client, a file line or a message: like json.loads, except that an integer of
    more than MAX_INTEGER_DIGITS digits stays a string (validation then rejects that value
    alone, where json.loads would refuse the whole document)."""
    return json.loads(text, parse_int=_integer)


def is_identifier(value: str) -> bool:
    """Whether `value` is an identifier (1-64 of [A-Za-z0-9_.:-])."""
    return _IDENTIFIER_RE.fullmatch(value) is not None


def check_identifier(value: str, field_name: str) -> str:
    """Return `value` if it is a valid identifier (1–64 of [A-Za-z0-9_.:-]), else raise 422."""
    if not _IDENTIFIER_RE.fullmatch(value):
        raise ValidationError(f"{field_name}: must be 1-64 characters of A-Z a-z 0-9 _ . : -")
    return value


class ReadingIn(BaseModel):
    """A reading as a device sends it (see docs/api.md, POST /readings)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    building: Identifier | None = None
    room: Identifier | None = None
    sensor_id: Identifier = DEFAULT_SENSOR
    timestamp: Annotated[
        StrictStr | StrictInt | StrictFloat | None,
        Field(
            description="ISO 8601 with offset or Z, or Unix epoch seconds; default: receive time",
            json_schema_extra={"examples": ["2026-11-25T10:15:00Z", 1795601700]},
        ),
    ] = None
    temperature: Number | None = None
    unit: TemperatureUnit = TemperatureUnit.C
    humidity: Annotated[float, Field(strict=True, ge=0, le=100)] | None = None
    co2: Annotated[float, Field(strict=True, ge=0, le=100_000)] | None = None

    def to_reading(self, now_ms: int, max_future_ms: int) -> Reading:
        """The domain reading: timestamp resolved to UTC ms, temperature in °C.

        The cross-field rules live here rather than in a pydantic model validator: plain Python is
        several microseconds cheaper per reading on the ingest hot path.
        """
        if (self.building is None) != (self.room is None):
            raise ValidationError("building and room go together: give both, or neither")
        if self.building is None and "sensor_id" not in self.model_fields_set:
            raise ValidationError(
                "building and room are required (or the sensor_id of a registered sensor)"
            )
        if self.temperature is None and self.humidity is None and self.co2 is None:
            raise ValidationError("at least one of temperature, humidity, co2 is required")
        ts = self.timestamp
        if ts is None:
            ts_ms = now_ms
        elif isinstance(ts, str):
            ts_ms = parse_iso(ts, "timestamp")
        else:
            ts_ms = parse_epoch(ts, "timestamp")
        if ts_ms > now_ms + max_future_ms:
            raise ValidationError(
                f"timestamp: more than {max_future_ms // 1000} s in the future (the clock of "
                "this API is the reference)"
            )
        temperature = self.temperature
        if temperature is not None:
            if self.unit is not TemperatureUnit.C:
                temperature = to_celsius(temperature, self.unit)
            if temperature < ABSOLUTE_ZERO_C - 1e-9:
                raise ValidationError("temperature: below absolute zero")
            if temperature > MAX_TEMPERATURE_C:
                raise ValidationError("temperature: above 1000 °C, not a room reading")
        # A sensor-only reading has no room yet: the registry resolves it (UNRESOLVED).
        # Positional: building, room, sensor_id, ts_ms, temperature, humidity, co2.
        return Reading(
            self.building or UNRESOLVED,
            self.room or UNRESOLVED,
            self.sensor_id,
            ts_ms,
            temperature,
            self.humidity,
            self.co2,
        )


@dataclass(frozen=True, slots=True)
class Rejection:
    """One reading of a batch that was not stored, by its position in the request, and why."""

    index: int
    error: type[DomainError]
    message: str

    @property
    def code(self) -> str:
        """The error's code, as the API lists it."""
        return self.error.code

    def raise_it(self) -> NoReturn:
        """Raise the error (a single reading's rejection is the request's answer)."""
        raise self.error(self.message)


@dataclass(slots=True)
class ParsedBatch:
    """The valid readings of a request and the rejections, in request order."""

    single: bool
    readings: list[Reading] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # request index of each valid reading
    rejected: list[Rejection] = field(default_factory=list)

    def add(self, index: int, reading: Reading) -> None:
        """Keep a valid reading with its request index."""
        self.readings.append(reading)
        self.positions.append(index)

    def reject(self, index: int, error: type[DomainError], message: str) -> None:
        """Turn the valid reading at request `index` into a rejection."""
        at = self.positions.index(index)
        del self.readings[at], self.positions[at]
        self.rejected.append(Rejection(index, error, message))
        self.rejected.sort(key=lambda r: r.index)

    def settle(self, kept: list[tuple[int, Reading]], rejected: list[Rejection]) -> None:
        """Keep exactly `kept` (request index, reading) and add `rejected`: one pass for a
        whole batch where `reject` would search it once per reading."""
        self.positions = [index for index, _ in kept]
        self.readings = [reading for _, reading in kept]
        self.rejected = sorted([*self.rejected, *rejected], key=lambda r: r.index)


_BATCH_ADAPTER: TypeAdapter[list[ReadingIn]] = TypeAdapter(list[ReadingIn])


def describe_errors(error: PydanticValidationError) -> str:
    """One readable line from pydantic's errors: `field: message; ...`."""
    parts: list[str] = []
    for item in error.errors(include_url=False, include_context=False, include_input=False):
        loc = [str(p) for p in item["loc"] if not isinstance(p, int)]
        message = str(item["msg"]).removeprefix("Value error, ")
        if loc[:1] == ["timestamp"] and len(loc) > 1:
            # One line for the union (string | int | float), not one per branch.
            loc, message = ["timestamp"], "must be an ISO 8601 string or Unix epoch seconds"
        part = f"{'.'.join(loc)}: {message}" if loc else message
        if part not in parts:
            parts.append(part)
    return "; ".join(parts)


def parse_one(raw: Any, now_ms: int, max_future_ms: int) -> Reading:
    """Validate one reading object; raise ValidationError (422) with a readable message."""
    if not isinstance(raw, dict):
        raise ValidationError("a reading must be a JSON object")
    try:
        model = ReadingIn.model_validate(raw)
    except PydanticValidationError as exc:
        raise ValidationError(describe_errors(exc)) from None
    return model.to_reading(now_ms, max_future_ms)


def parse_readings(body: Any, now_ms: int, max_future_ms: int) -> ParsedBatch:
    """Validate a request body: one reading object or `{"readings": [...]}` (1–1000)."""
    if not isinstance(body, dict):
        raise MalformedRequestError('body must be a reading object or {"readings": [...]}')
    if "readings" not in body:
        return ParsedBatch(
            single=True, readings=[parse_one(body, now_ms, max_future_ms)], positions=[0]
        )
    if len(body) != 1:
        raise MalformedRequestError('a batch body has only the key "readings"')
    items = body["readings"]
    if not isinstance(items, list):
        raise MalformedRequestError('"readings" must be a list')
    if len(items) > MAX_BATCH:
        raise PayloadTooLargeError(f"at most {MAX_BATCH} readings per request, got {len(items)}")
    if not items:
        raise ValidationError('"readings" must hold at least one reading')
    return parse_items(items, now_ms, max_future_ms)


def parse_items(items: Sequence[Any], now_ms: int, max_future_ms: int) -> ParsedBatch:
    """Validate each item; valid ones become readings, the rest rejections with their index."""
    batch = ParsedBatch(single=False)
    try:
        models: list[ReadingIn | None] = list(_BATCH_ADAPTER.validate_python(items))
    except PydanticValidationError:
        # Some item is bad: validate one by one to know which (rare path, so the fast path stays).
        models = []
        for index, raw in enumerate(items):
            try:
                if not isinstance(raw, dict):
                    raise ValidationError("a reading must be a JSON object")
                models.append(ReadingIn.model_validate(raw))
            except PydanticValidationError as exc:
                models.append(None)
                batch.rejected.append(Rejection(index, ValidationError, describe_errors(exc)))
            except ValidationError as exc:
                models.append(None)
                batch.rejected.append(Rejection(index, type(exc), exc.message))
    for index, model in enumerate(models):
        if model is None:
            continue
        try:
            batch.add(index, model.to_reading(now_ms, max_future_ms))
        except ValidationError as exc:
            batch.rejected.append(Rejection(index, type(exc), exc.message))
        except (ArithmeticError, ValueError) as exc:  # a value no rule foresaw: this one only
            batch.rejected.append(
                Rejection(index, ValidationError, f"a value cannot be used: {exc}"[:200])
            )
    batch.rejected.sort(key=lambda r: r.index)
    return batch
