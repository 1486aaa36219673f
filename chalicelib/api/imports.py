"""Bulk imports through the API: POST /imports (a presigned upload form), GET /imports/{id} and
GET /imports. The file is ingested by the ingest worker like any file of incoming/."""

from __future__ import annotations

import secrets

from chalice.app import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from chalicelib import wiring
from chalicelib.api.http import json_body, parse_body, parse_query
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Reply, idempotent, route
from chalicelib.api.scope import cursor_after, owner, page_after
from chalicelib.domain.access import Principal, Scope
from chalicelib.domain.errors import ForbiddenError
from chalicelib.domain.imports import DEFAULT_FILENAME, REJECTED_ROWS_SHOWN, ImportView
from chalicelib.domain.timeutil import format_ms, now_ms
from chalicelib.services import idempotency, uploads
from chalicelib.settings import get_settings

imports_api = Blueprint(__name__)

INGEST_OR_ADMIN = (Scope.INGEST, Scope.ADMIN)
READ_OR_INGEST = (Scope.READ, Scope.INGEST)  # admin implies read


class ImportIn(BaseModel):
    """POST /imports: the file's name (its extension says its format)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    filename: str = Field(
        DEFAULT_FILENAME,
        description="1-64 of A-Z a-z 0-9 _ . : -, ending in .csv, .ndjson or .jsonl (+ .gz)",
    )


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class UploadForm(_Out):
    """How to upload the file: a multipart/form-data POST of `fields` then the file as `file`."""

    url: str
    method: str = "POST"
    fields: dict[str, str]
    max_bytes: int
    expires_at: str


class ImportCreated(_Out):
    import_id: str
    filename: str
    status: str
    upload: UploadForm
    status_url: str


class RejectedRow(_Out):
    line: int
    reason: str


class ImportOut(_Out):
    """An import: its state, its counts and (GET /imports/{id}) its first rejected rows."""

    import_id: str
    filename: str
    status: str = Field(
        description="awaiting_upload | expired | queued | stalled | processing | done | failed"
    )
    created_at: str
    upload_expires_at: str
    rows: int
    stored: int
    duplicates: int
    rejected: int
    rejected_rows: list[RejectedRow] | None = None
    error: str | None = None
    started_at: str | None = None
    updated_at: str | None = None

    @classmethod
    def of(cls, view: ImportView, *, rows_shown: int | None) -> ImportOut:
        report = view.report
        shown = None
        if rows_shown is not None:
            kept = report.rejected_rows[:rows_shown] if report else []
            shown = [RejectedRow(line=int(r["line"]), reason=str(r["reason"])) for r in kept]
        return cls(
            import_id=view.ticket.import_id,
            filename=view.ticket.filename,
            status=view.status,
            created_at=format_ms(view.ticket.created_ms),
            upload_expires_at=format_ms(view.ticket.expires_ms),
            rows=report.rows_read if report else 0,
            stored=report.stored if report else 0,
            duplicates=report.duplicates if report else 0,
            rejected=report.rejected if report else 0,
            rejected_rows=shown,
            error=report.error if report else view.error,
            started_at=(report.started_at or None) if report else None,
            updated_at=(report.updated_at or None) if report else None,
        )


class ImportsPage(_Out):
    items: list[ImportOut]
    next_cursor: str | None


def unbound(principal: Principal) -> Principal:
    """The caller, if its key is not bound to buildings or sensors (403 otherwise)."""
    if principal.buildings is not None or principal.sensors is not None:
        # A file may name any building and sensor of the tenant; its rows are not checked
        # against a key's bindings, so a bound key may neither import nor read import reports.
        raise ForbiddenError(
            "keys bound to buildings or sensors cannot use imports: "
            "a file may write to any building of the tenant; use an unbound ingest or admin key"
        )
    return principal


@route(
    imports_api,
    "/imports",
    "POST",
    INGEST_OR_ADMIN,
    body=ImportIn,
    body_examples={"csv": {"filename": "readings.csv"}},
    responses={201: (ImportCreated, "Upload the file with `upload` before it expires")},
)
def post_import(principal: Principal) -> Reply:
    """Start an import: 201 with a presigned upload form for the file and its status URL.

    Upload with `curl -F key=... -F ...every field... -F file=@readings.csv <url>` (the file last);
    S3 refuses files over `max_bytes` and forms used after `expires_at`. With an
    `Idempotency-Key` header, a retry gets the first answer (the same import) back.
    """
    request = imports_api.current_request
    caller = unbound(principal)
    # No body at all is `{}`: every field has a default (docs/api.md)
    asked = parse_body(ImportIn, json_body(request) if request.raw_body else {})
    key = request.headers.get("idempotency-key")
    if key is None:
        return _create(caller, asked, now_ms())
    reply = idempotent(
        owner(caller),
        key,
        idempotency.fingerprint("POST /imports", asked.model_dump_json()),
        lambda now: _create(caller, asked, now),
    )
    body = getattr(reply.body, "value", None)
    if reply.status == 201 and isinstance(body, dict) and "status_url" in body:
        reply.headers["Location"] = str(body["status_url"])  # the kept answer keeps no headers
    return reply


def _create(principal: Principal, asked: ImportIn, now: int) -> Reply:
    settings = get_settings()
    created = uploads.create_import(
        wiring.object_store(),
        owner(principal),
        asked.filename,
        key_id=principal.key_id,
        now_ms=now,
        nonce=secrets.token_hex(16),
        seconds=settings.import_upload_seconds,
        max_bytes=settings.import_max_bytes,
    )
    ticket = created.ticket
    status_url = f"/imports/{ticket.import_id}"
    return Reply(
        201,
        ImportCreated(
            import_id=ticket.import_id,
            filename=ticket.filename,
            status="awaiting_upload",
            upload=UploadForm(
                url=str(created.form["url"]),
                fields={str(k): str(v) for k, v in created.form["fields"].items()},
                max_bytes=settings.import_max_bytes,
                expires_at=format_ms(ticket.expires_ms),
            ),
            status_url=status_url,
        ),
        headers={"Location": status_url},
    )


@route(imports_api, "/imports/{import_id}", "GET", READ_OR_INGEST, responses={200: ImportOut})
def get_import(principal: Principal, import_id: str) -> ImportOut:
    """One import: its state, row counts and its first 100 rejected rows (line and reason)."""
    view = uploads.import_status(
        wiring.object_store(),
        owner(unbound(principal)),
        import_id,
        now_ms=now_ms(),
        stall_seconds=get_settings().import_stall_seconds,
    )
    return ImportOut.of(view, rows_shown=REJECTED_ROWS_SHOWN)


@route(
    imports_api, "/imports", "GET", READ_OR_INGEST, query=PageQuery, responses={200: ImportsPage}
)
def list_imports(principal: Principal) -> ImportsPage:
    """The caller's imports, newest first, paginated (counts only; rejected rows by id)."""
    tenant = owner(unbound(principal))
    asked = parse_query(PageQuery, imports_api.current_request)
    views, following = uploads.list_imports(
        wiring.object_store(),
        tenant,
        after=page_after(asked.cursor, "imports"),
        limit=asked.limit,
        now_ms=now_ms(),
        stall_seconds=get_settings().import_stall_seconds,
    )
    return ImportsPage(
        items=[ImportOut.of(v, rows_shown=None) for v in views],
        next_cursor=cursor_after(following, "imports"),
    )
