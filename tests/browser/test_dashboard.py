"""The dashboard and /docs in a real headless Chromium, behind an `/api` prefix like API Gateway's.

Debian's `chromium` (/usr/bin/chromium) driven by Playwright; `.ci/run` installs the browser.
The stack is the one `make run` starts (emulator + table + `chalice local`) on free ports, with a
small proxy in front that serves it under /api, so relative URLs are tested as deployed.
Set ROOMTEMP_SCREENSHOT=docs/screenshot.png to refresh the README's screenshot.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.domain.access import Scope
from chalicelib.domain.timeutil import format_ms, now_ms
from infra.cli.keys import bootstrap_key
from infra.cli.simulate import Simulator, http_transport, make_rooms
from infra.local import (
    FAKE_CREDENTIALS,
    LOCALHOST,
    Emulator,
    aws_env,
    bootstrap,
    free_port,
    start_api,
    stop_process,
)
from tests.streams import drain_table

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PREFIX = "/api"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="no /usr/bin/chromium: `apt-get install chromium` (.ci/run installs it in CI)",
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


class PrefixProxy(http.server.ThreadingHTTPServer):
    """Serves `upstream` under PREFIX, as API Gateway serves a stage: /api/x -> upstream/x."""

    daemon_threads = True

    def __init__(self, port: int, upstream: str) -> None:
        self.upstream = upstream
        super().__init__((LOCALHOST, port), _ProxyHandler)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: PrefixProxy

    def do_GET(self) -> None:
        if self.path != PREFIX and not self.path.startswith(PREFIX + "/"):
            self._answer(403, {"Content-Type": "application/json"}, b'{"message":"Forbidden"}')
            return
        upstream = self.server.upstream + (self.path[len(PREFIX) :] or "/")
        headers = {k: v for k, v in self.headers.items() if k.lower() in {"authorization"}}
        try:
            with urllib.request.urlopen(urllib.request.Request(upstream, headers=headers)) as r:
                self._answer(r.status, dict(r.headers), r.read())
        except urllib.error.HTTPError as error:
            self._answer(error.code, dict(error.headers), error.read())

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() in {"content-type", "cache-control", "www-authenticate"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, str]]:
    """Emulator, table, API, an /api proxy, keys, and a day of simulated readings."""
    table = "roomtemp"  # the name .chalice/config.json gives `chalice local`; the emulator is ours
    emulator = Emulator(free_port()).start()
    saved = dict(os.environ)
    process = None
    proxy = None
    try:
        env = aws_env(emulator.endpoint, table)
        os.environ.update({k: env[k] for k in [*FAKE_CREDENTIALS, "AWS_ENDPOINT_URL"]})
        os.environ["ROOMTEMP_TABLE_NAME"] = table
        wiring.reset()
        bootstrap(emulator.endpoint, table)
        admin = bootstrap_key("browser", [Scope.ADMIN, Scope.INGEST], "browser test")["key"]
        port = free_port()
        process = start_api(port, env, quiet=True)
        api = f"http://{LOCALHOST}:{port}"
        # a day of history for 2 buildings x 2 rooms, through the simulator and the real API
        simulator = Simulator(make_rooms(2, 2, 1, seed=42), http_transport(api, admin), seed=42)
        now = now_ms()
        simulator.backfill(now - 24 * 3_600_000, now, 5 * 60_000)
        assert simulator.summary.accepted == simulator.summary.generated == 4 * 288
        drain_table(table)  # the table's stream brings them to the rollups behind the chart
        proxy = PrefixProxy(free_port(), api)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        yield {"api": api, "site": f"http://{LOCALHOST}:{proxy.server_port}{PREFIX}", "key": admin}
    finally:
        if proxy is not None:
            proxy.shutdown()
            proxy.server_close()
        if process is not None:
            stop_process(process)
        emulator.stop()
        os.environ.clear()
        os.environ.update(saved)
        wiring.reset()


@pytest.fixture
def page() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            yield context.new_page()
        finally:
            browser.close()


def watch_console(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    return problems


def api_rooms(stack: dict[str, str]) -> set[tuple[str, str]]:
    def get(path: str) -> Any:
        request = urllib.request.Request(
            stack["api"] + path, headers={"Authorization": f"Bearer {stack['key']}"}
        )
        with urllib.request.urlopen(request) as answer:
            return json.load(answer)

    buildings = [b["building"] for b in get("/buildings")["items"]]
    return {(b, r["room"]) for b in buildings for r in get(f"/buildings/{b}/rooms")["items"]}


def test_dashboard_shows_the_rooms_and_a_chart(stack: dict[str, str], page: Any) -> None:
    problems = watch_console(page)
    # Given the dashboard under the /api prefix (no trailing slash, as API Gateway links it)
    page.goto(stack["site"])
    # When a key is pasted
    page.fill("#key", stack["key"])
    page.click("#key-form button[type=submit]")
    # Then every room the API returns is shown, colored against the comfort band
    expected = api_rooms(stack)
    assert len(expected) == 4
    page.wait_for_function(f"document.querySelectorAll('.room').length === {len(expected)}")
    shown = {
        (card.get_attribute("data-building"), card.get_attribute("data-room"))
        for card in page.query_selector_all(".room")
    }
    assert shown == expected
    for card in page.query_selector_all(".room"):
        classes = set((card.get_attribute("class") or "").split())
        assert classes & {"ok", "cold", "warm"}, classes
        assert "15-min average –" not in card.inner_text()  # the average has a value
    # and the chart of the selected room has data points for the day
    page.wait_for_function("Number(document.getElementById('chart').dataset.points || 0) > 0")
    points = page.locator("#chart circle.point").count()
    assert 80 <= points <= 97  # 15-minute buckets of the last 24 h
    assert page.locator("#chart polyline.avg").count() >= 1
    # and the key is kept for the next visit
    assert page.evaluate("localStorage.getItem('roomtemp.key')") == stack["key"]
    screenshot = os.environ.get("ROOMTEMP_SCREENSHOT")
    if screenshot:
        page.screenshot(path=screenshot, full_page=True)
    assert problems == []


def test_clicking_a_room_charts_that_room(stack: dict[str, str], page: Any) -> None:
    problems = watch_console(page)
    page.goto(stack["site"] + "/")
    page.fill("#key", stack["key"])
    page.click("#key-form button[type=submit]")
    page.wait_for_selector(".room")
    last = page.query_selector_all(".room")[-1]
    last.click()
    building, room = last.get_attribute("data-building"), last.get_attribute("data-room")
    page.wait_for_function(
        "document.getElementById('chart-title').textContent.startsWith("
        + json.dumps(f"{building} / {room}")
        + ")"
    )
    page.wait_for_function("Number(document.getElementById('chart').dataset.points || 0) > 0")
    assert "selected" in (last.get_attribute("class") or "")
    assert problems == []


def test_docs_page_lists_every_operation(stack: dict[str, str], page: Any) -> None:
    problems = watch_console(page)
    with urllib.request.urlopen(stack["api"] + "/openapi.json") as answer:
        document = json.load(answer)
    operations = sum(len(ops) for ops in document["paths"].values())
    page.goto(stack["site"] + "/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() == operations
    # requests from the page go to the page's own /api base
    assert page.evaluate("window.ui.specSelectors.servers().toJS()[0].url") == stack["site"]
    assert problems == []


def test_chart_uses_the_series_endpoint_once_the_api_has_it(
    stack: dict[str, str], page: Any
) -> None:
    # Given an API whose openapi.json lists the series route (intercepted: not built here yet)
    problems = watch_console(page)
    with urllib.request.urlopen(stack["api"] + "/openapi.json") as answer:
        document = json.load(answer)
    document["paths"]["/buildings/{building}/rooms/{room}/series"] = {"get": {"responses": {}}}
    asked: list[str] = []

    def series(route: Any) -> None:
        asked.append(route.request.url)
        start = now_ms() - 3 * 3_600_000
        buckets = [
            {
                "start": format_ms(start + i * 900_000),
                "count": 3,
                "average": 21 + i / 10,
                "min": 20.5 + i / 10,
                "max": 21.5 + i / 10,
            }
            for i in range(5)
        ]
        route.fulfill(
            status=200, content_type="application/json", body=json.dumps({"buckets": buckets})
        )

    page.route("**/openapi.json", lambda route: route.fulfill(json=document))
    page.route("**/series?*", series)
    # When the dashboard draws a room
    page.goto(stack["site"])
    page.fill("#key", stack["key"])
    page.click("#key-form button[type=submit]")
    # Then the chart shows the series' buckets, asked with the documented parameters
    page.wait_for_function("Number(document.getElementById('chart').dataset.points || 0) > 0")
    assert page.locator("#chart circle.point").count() == 5
    assert "series endpoint" in page.inner_text("#chart-source")
    assert asked and "metric=temperature" in asked[0] and "interval=15m" in asked[0]
    assert "/api/buildings/" in asked[0]
    assert problems == []
