"""GET /health: 200 when the table, the bucket and every queue answer, 503 naming what does not.
Needs no key."""

from __future__ import annotations

from chalice.app import Blueprint

from chalicelib import wiring
from chalicelib.api.responses import Health
from chalicelib.api.routing import PUBLIC, route
from chalicelib.services import health as checks

health = Blueprint(__name__)


@route(health, "/health", "GET", PUBLIC, responses={200: Health}, errors=(503,))
def get_health() -> Health:
    """Liveness of the API and of every resource it uses."""
    return Health(status="ok", checks=checks.check(wiring.health_checks()))
