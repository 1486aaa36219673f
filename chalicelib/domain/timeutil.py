"""UTC millisecond timestamps: parsing what clients send and the one fixed-width text form."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from chalicelib.domain.errors import ValidationError

# Readings before this are clock resets (1970) or typos, not building data.
MIN_TIMESTAMP_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
# The fixed-width text form has four year digits.
MAX_TIMESTAMP_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def now_ms() -> int:
    """The current time as epoch milliseconds."""
    return time.time_ns() // 1_000_000


def parse_iso(text: str, field: str) -> int:
    """Parse ISO 8601 text that carries an offset or `Z` into epoch milliseconds."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{field}: not an ISO 8601 timestamp: {text[:40]!r}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValidationError(f"{field}: ISO 8601 timestamp needs an offset or 'Z'")
    delta = parsed - _EPOCH
    return _check_range(delta // _ONE_MS, field)


def parse_epoch(value: float, field: str) -> int:
    """Parse Unix epoch seconds (int or float) into epoch milliseconds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{field}: must be a number of seconds")
    # An int is exact (and may be too large for a float); only a float can be NaN or infinite.
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"{field}: must be a finite number")
    # Out of range before any arithmetic: 1e308 * 1000 would overflow to infinity.
    if value < MIN_TIMESTAMP_MS // 1000:
        raise ValidationError(f"{field}: before 2000-01-01T00:00:00Z")
    if value > MAX_TIMESTAMP_MS // 1000 + 1:
        raise ValidationError(f"{field}: after 9999-12-31T23:59:59.999Z")
    # Round away float noise first: 1700000000.007 * 1000 may be 1700000000006.9999.
    return _check_range(math.floor(round(value * 1000, 3)), field)


def format_ms(ms: int) -> str:
    """Epoch ms as `YYYY-MM-DDTHH:MM:SS.mmmZ`: fixed width, so text order is time order."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _check_range(ms: int, field: str) -> int:
    if ms < MIN_TIMESTAMP_MS:
        raise ValidationError(f"{field}: before 2000-01-01T00:00:00Z")
    if ms > MAX_TIMESTAMP_MS:
        raise ValidationError(f"{field}: after 9999-12-31T23:59:59.999Z")
    return ms


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC) - _EPOCH


def _instant(value: Any) -> Any:
    # An answer read back from storage carries the text form: parse it to epoch ms again.
    return parse_iso(value, "timestamp") if isinstance(value, str) else value


# An instant held as epoch ms and shown (in JSON) in the one fixed-width text form.
Timestamp = Annotated[
    int,
    BeforeValidator(_instant),
    PlainSerializer(format_ms, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
