"""File imports: where files and their import status live in the bucket, where a file's reading
stopped (a segment), and what happened to it (its import status). Pure: no storage here.

A tenant's file is `incoming/<tenant>/<any path>`; its import status is kept as
`imports/<tenant>/<same path>.json`, rewritten after every segment. (Analytics reports live apart,
under `reports/`: the two are different things.)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.inputs import check_identifier

INCOMING = "incoming/"
IMPORTS = "imports/"
MAX_REPORTED_REJECTIONS = 1000
SEGMENT_MESSAGE = "file-segment"


def tenant_of(key: str) -> str:
    """The tenant a key belongs to: incoming/<tenant>/<any path>; ValidationError otherwise."""
    parts = key.split("/")
    if len(parts) < 3 or parts[0] + "/" != INCOMING or not parts[-1]:
        raise ValidationError("key: must be incoming/<tenant>/<file>")
    return check_identifier(parts[1], "tenant (the key's second segment)")


def status_key(key: str) -> str:
    """Where the import status of file `key` is kept: imports/<tenant>/<path>.json."""
    return IMPORTS + key.removeprefix(INCOMING) + ".json"


@dataclass(slots=True)
class Segment:
    """Where to (re)start reading a file: what a continuation message carries."""

    key: str
    etag: str
    number: int = 0
    offset: int = 0  # bytes of the file already read (uncompressed bytes for .gz)
    line: int = 1  # number of the next line
    header: list[str] | None = None

    def to_message(self) -> str:
        """The continuation message body."""
        return json.dumps({"kind": SEGMENT_MESSAGE, **asdict(self)})

    @classmethod
    def from_message(cls, body: dict[str, Any]) -> Segment:
        """Parse a continuation message body; KeyError/TypeError if it is not one."""
        return cls(
            key=str(body["key"]),
            etag=str(body["etag"]),
            number=int(body["number"]),
            offset=int(body["offset"]),
            line=int(body["line"]),
            header=None if body.get("header") is None else [str(c) for c in body["header"]],
        )


@dataclass(slots=True)
class ImportStatus:
    """What happened to one file; kept in the bucket (status_key) after every segment."""

    key: str
    etag: str
    tenant: str | None = None
    status: str = "in_progress"  # in_progress | done | failed
    rows_read: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    segments: int = 0
    next: dict[str, Any] | None = None
    next_queued: bool = False  # the continuation of `next` was sent (a duplicate must not resend)
    started_at: str = ""
    updated_at: str = ""

    def reject(self, line: int, reason: str) -> None:
        """Count a rejected row; keep the first 1000 with line number and reason."""
        self.rejected += 1
        if len(self.rejected_rows) < MAX_REPORTED_REJECTIONS:
            self.rejected_rows.append({"line": line, "reason": reason})

    def to_json(self) -> dict[str, Any]:
        """As kept in the bucket."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportStatus:
        """A kept import status."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})
