"""Bulk imports through the API: an import is asked for (a ticket and a presigned upload form
under the caller's tenant), the file arrives in the bucket and is ingested like any dropped file
(services/imports.py), and its status is read back from the ticket and the file's ImportStatus.

Nothing here talks to S3: the UploadStore port keeps the tickets, lists them and signs the forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import NotFoundError
from chalicelib.domain.imports import (
    STATES,
    ImportStatus,
    ImportTicket,
    ImportView,
    check_filename,
    import_id_of,
    new_import_id,
    stalled_reason,
    status_key,
    ticket_key,
    tickets_prefix,
    upload_key,
)
from chalicelib.domain.inputs import check_identifier
from chalicelib.ports import ObjectGoneError, UploadStore


@dataclass(frozen=True, slots=True)
class NewImport:
    """An import just asked for: its ticket and the form its file is uploaded with."""

    ticket: ImportTicket
    form: dict[str, Any]


def create_import(
    objects: UploadStore,
    tenant: str,
    filename: str,
    *,
    key_id: str,
    now_ms: int,
    nonce: str,
    seconds: int,
    max_bytes: int,
) -> NewImport:
    """Keep a ticket for a new import of `filename` and sign the form its file is uploaded with."""
    filename = check_filename(filename)
    import_id = new_import_id(now_ms, nonce)
    ticket = ImportTicket(
        import_id=import_id,
        tenant=tenant,
        filename=filename,
        key=upload_key(tenant, import_id, filename),
        created_ms=now_ms,
        expires_ms=now_ms + seconds * 1000,
        created_by=key_id,
    )
    objects.put_json(ticket_key(tenant, import_id), ticket.to_json())
    form = objects.upload_form(ticket.key, max_bytes=max_bytes, seconds=seconds)
    return NewImport(ticket, form)


def import_status(
    objects: UploadStore, tenant: str, import_id: str, *, now_ms: int, stall_seconds: int
) -> ImportView:
    """One of the tenant's imports; NotFoundError for unknown ids and other tenants' ids."""
    kept = objects.get_json(ticket_key(tenant, check_identifier(import_id, "import_id")))
    if not isinstance(kept, dict):
        raise NotFoundError(f"import {import_id} does not exist")
    return _view(objects, ImportTicket.from_json(kept), now_ms, stall_seconds)


def list_imports(
    objects: UploadStore,
    tenant: str,
    *,
    after: str | None,
    limit: int,
    now_ms: int,
    stall_seconds: int,
) -> tuple[list[ImportView], str | None]:
    """The tenant's imports, newest first; and the import id the next page starts after.

    One listing, then up to 3 reads per import (ticket, status, the file's head), the imports
    read a few at a time (`objects.each`) so that a page of 100 stays well inside a request's
    deadline."""
    prefix = tickets_prefix(tenant)
    start = None if after is None else ticket_key(tenant, after)
    keys, more = objects.list_keys(prefix, after=start, limit=limit)

    def view_of(key: str) -> ImportView | None:
        kept = objects.get_json(key)
        if not isinstance(kept, dict):
            return None  # deleted between the listing and the read
        return _view(objects, ImportTicket.from_json(kept), now_ms, stall_seconds)

    views = [view for view in objects.each(view_of, keys) if view is not None]
    following = import_id_of(keys[-1]) if more and keys else None
    return views, following


def _view(
    objects: UploadStore, ticket: ImportTicket, now_ms: int, stall_seconds: int
) -> ImportView:
    kept = objects.get_json(status_key(ticket.key))
    if isinstance(kept, dict):
        report = ImportStatus.from_json(kept)
        return ImportView(ticket, STATES.get(report.status, "processing"), report)
    try:
        uploaded_ms = objects.stored_ms(ticket.key)
    except ObjectGoneError:
        return ImportView(
            ticket, "expired" if now_ms > ticket.expires_ms else "awaiting_upload", None
        )
    if now_ms - uploaded_ms > stall_seconds * 1000:
        # No worker wrote a status in every receive of its notification: it is dead-lettered.
        return ImportView(ticket, "stalled", None, stalled_reason(stall_seconds))
    return ImportView(ticket, "queued", None)  # uploaded; its notification is on its way
