"""Public pages: the OpenAPI document, Swagger UI (/docs), the dashboard (/) and their assets.

The static files ship inside chalicelib/static (Chalice packages the whole of chalicelib), so no
build step or file server is needed at run time. Pages use relative URLs, so they work at `/`
locally and under API Gateway's `/api` stage prefix alike.
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from chalice.app import Blueprint, Response

from chalicelib.api.errors import error_response
from chalicelib.api.openapi import app_routes, base_path, build_document
from chalicelib.api.routing import PUBLIC, route

web = Blueprint(__name__)
STATIC = Path(__file__).resolve().parent.parent / "static"
HTML = "text/html; charset=utf-8"
# name -> (file under chalicelib/static, content type); nothing else is served.
ASSETS: dict[str, tuple[str, str]] = {
    "dashboard.js": ("dashboard.js", "application/javascript; charset=utf-8"),
    "dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    "docs.js": ("docs.js", "application/javascript; charset=utf-8"),
    "swagger-ui-bundle.js": (
        "vendor/swagger-ui-bundle.js",
        "application/javascript; charset=utf-8",
    ),
    "swagger-ui.css": ("vendor/swagger-ui.css", "text/css; charset=utf-8"),
}
HTML_PAGE = {200: {"description": "An HTML page", "content": {"text/html": {}}}}


@cache
def _read(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def _file(name: str, content_type: str, max_age: int) -> Response:
    return Response(
        body=_read(name),
        status_code=200,
        headers={"Content-Type": content_type, "Cache-Control": f"public, max-age={max_age}"},
    )


@route(web, "/openapi.json", "GET", PUBLIC, responses={200: "The OpenAPI 3.1 document"})
def get_openapi() -> dict[str, Any]:
    """This API's OpenAPI 3.1 document, generated from its routes."""
    server = base_path(web.current_request.context, "/openapi.json")
    return _document(tuple(sorted(app_routes(web.current_app.routes))), server)


@lru_cache(maxsize=8)
def _document(routes: tuple[tuple[str, str], ...], server: str) -> dict[str, Any]:
    # ~0.1 s to build (pydantic schema generation); the route table is fixed once the app is up.
    return build_document(routes, server_url=server)


@route(web, "/docs", "GET", PUBLIC, responses=HTML_PAGE)
def get_docs() -> Response:
    """Interactive API docs (Swagger UI) to try the API with a key."""
    return _file("docs.html", HTML, 300)


@route(web, "/", "GET", PUBLIC, responses=HTML_PAGE)
def get_dashboard() -> Response:
    """The dashboard: buildings, rooms against a comfort band, a 24-hour room chart."""
    return _file("dashboard.html", HTML, 300)


@route(
    web,
    "/static/{name}",
    "GET",
    PUBLIC,
    responses={
        200: {
            "description": "A script or stylesheet of the pages",
            "content": {"application/javascript": {}, "text/css": {}},
        },
        404: "Not one of the pages' assets",
    },
)
def get_static(name: str) -> Response:
    """A script or stylesheet of the dashboard or docs pages (a fixed list)."""
    asset = ASSETS.get(name)
    if asset is None:
        return error_response(404, "NotFound", f"no static file {name!r}")
    file, content_type = asset
    return _file(file, content_type, 86_400 if file.startswith("vendor/") else 300)
