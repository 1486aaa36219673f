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
from chalicelib.domain.formats import FileFormatError, file_kind
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


# -- imports through the API (POST /imports): a ticket per import, the file under its id ----------

UPLOADS = "uploads/"
REJECTED_ROWS_SHOWN = 100  # GET /imports/{id} shows the first rejected rows; the count is whole
_NEWEST_FIRST = 10**13  # ids start with this minus the creation ms: listing order is newest first
DEFAULT_FILENAME = "readings.csv"
# What GET /imports/{id} answers for a kept ImportStatus's status.
STATES = {"in_progress": "processing", "done": "done", "failed": "failed"}


def new_import_id(now_ms: int, nonce: str) -> str:
    """An import id: creation time, descending (so key order is newest first), then `nonce`."""
    return f"{_NEWEST_FIRST - now_ms:013d}-{nonce}"


def check_filename(filename: str) -> str:
    """A file name an import may take: an identifier ending in a format file ingest reads."""
    check_identifier(filename, "filename")
    try:
        file_kind(filename)
    except FileFormatError as exc:
        raise ValidationError(f"filename: {exc}") from None
    return filename


def upload_key(tenant: str, import_id: str, filename: str) -> str:
    """Where an import's file is uploaded: incoming/<tenant>/<import id>/<filename>."""
    return f"{INCOMING}{tenant}/{import_id}/{filename}"


def ticket_key(tenant: str, import_id: str) -> str:
    """Where an import's ticket is kept: uploads/<tenant>/<import id>.json."""
    return f"{UPLOADS}{tenant}/{import_id}.json"


def tickets_prefix(tenant: str) -> str:
    """The prefix of every ticket of `tenant` (listed in key order: newest first)."""
    return f"{UPLOADS}{tenant}/"


def import_id_of(ticket: str) -> str:
    """The import id of a ticket key."""
    return ticket.rsplit("/", 1)[-1].removesuffix(".json")


@dataclass(slots=True)
class ImportTicket:
    """An import asked for through the API: its file's key and until when it may be uploaded."""

    import_id: str
    tenant: str
    filename: str
    key: str
    created_ms: int
    expires_ms: int
    created_by: str  # the key id that asked for it

    def to_json(self) -> dict[str, Any]:
        """As kept in the bucket."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportTicket:
        """A kept ticket."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, slots=True)
class ImportView:
    """What GET /imports/{id} shows: the ticket, the state, and the file's import status."""

    ticket: ImportTicket
    status: str  # awaiting_upload | expired | queued | stalled | processing | done | failed
    report: ImportStatus | None
    error: str | None = None  # why, when there is no import status to say it (stalled)


def stalled_reason(stall_seconds: int) -> str:
    """What a stalled import's `error` says."""
    return (
        f"no worker has started this file {stall_seconds} s after its upload: its "
        "notification has probably used every receive and waits in the ingest dead-letter "
        "queue; an operator can redrive it (docs/ingestion.md), or upload the file again"
    )
