"""GET /health: 200 when the table answers, 503 otherwise. Needs no key."""

from __future__ import annotations

from chalice.app import Blueprint

from chalicelib import wiring
from chalicelib.api.responses import Health
from chalicelib.api.routing import PUBLIC, route
from chalicelib.services import readings

health = Blueprint(__name__)


@route(health, "/health", "GET", PUBLIC, responses={200: Health}, errors=(503,))
def get_health() -> Health:
    """Liveness of the API and its table."""
    readings.check_health(wiring.repositories().readings)
    return Health(status="ok")
