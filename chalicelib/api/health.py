"""GET /health: 200 when the table answers, 503 otherwise."""

from __future__ import annotations

from chalice.app import Blueprint

from chalicelib import services
from chalicelib.api.http import translate_errors
from chalicelib.wiring import reading_repository

health = Blueprint(__name__)


@health.route("/health", methods=["GET"])
@translate_errors
def get_health() -> dict[str, str]:
    """Liveness of the API and its table."""
    services.check_health(reading_repository())
    return {"status": "ok"}
