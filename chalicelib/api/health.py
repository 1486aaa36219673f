"""GET /health: 200 when the table answers, 503 otherwise. Needs no key."""

from __future__ import annotations

from chalice.app import Blueprint

from chalicelib.api.responses import Health
from chalicelib.api.routing import PUBLIC, route
from chalicelib.services import readings as services
from chalicelib.wiring import reading_repository

health = Blueprint(__name__)


@route(health, "/health", "GET", PUBLIC, responses={200: Health}, errors=(503,))
def get_health() -> dict[str, str]:
    """Liveness of the API and its table."""
    services.check_health(reading_repository())
    return {"status": "ok"}
