"""What every tenant route shares: the caller's tenant, its rooms and buildings, list pages."""

from __future__ import annotations

from chalicelib import wiring
from chalicelib.api.http import identifier
from chalicelib.domain.access import Principal
from chalicelib.domain.cursors import decode_cursor, encode_cursor
from chalicelib.domain.errors import MalformedRequestError, NotFoundError
from chalicelib.domain.inputs import is_identifier
from chalicelib.domain.registry import Page
from chalicelib.services import access, registry


def owner(principal: Principal) -> str:
    """The caller's tenant (403 for operator keys)."""
    return access.tenant_of(principal)


def reachable(principal: Principal, building: str) -> str:
    """A building id the caller's key may reach (a key bound to other buildings: 404, as if it
    did not exist: bound keys learn nothing of the rest)."""
    building = identifier(building, "building")
    if not principal.reaches(building):
        raise NotFoundError(f"building {building} does not exist")
    return building


def scoped_room(principal: Principal, building: str, room: str) -> tuple[str, str]:
    """Valid identifiers of a room of the caller's tenant (404 for anyone else's)."""
    building, room = reachable(principal, building), identifier(room, "room")
    registry.check_room(
        wiring.repositories().registry, owner(principal), building, room, wiring.known_rooms()
    )
    return building, room


def scoped_building(principal: Principal, building: str) -> str:
    """A building of the caller's tenant (404 for anyone else's)."""
    building = reachable(principal, building)
    registry.owned_building(wiring.repositories().registry, owner(principal), building)
    return building


def page_after(cursor: str | None, kind: str) -> str | None:
    """The id after which a list page starts, from the previous page's `next_cursor`."""
    if cursor is None:
        return None
    state = decode_cursor(cursor, wiring.cursor_secret())
    after = state.get("a")
    if state.get("k") != kind or not isinstance(after, str) or not is_identifier(after):
        raise MalformedRequestError("cursor: not a cursor of this list")
    return after


def next_cursor(page: Page, kind: str) -> str | None:
    """The opaque cursor of the page after `page` (None on the last)."""
    return cursor_after(page.next_after, kind)


def cursor_after(after: str | None, kind: str) -> str | None:
    """The opaque cursor of the page of list `kind` that starts after `after` (None: none)."""
    if after is None:
        return None
    return encode_cursor({"k": kind, "a": after}, wiring.cursor_secret())
