"""Alerts end to end, as `make run` runs them: the API (`chalice local`), the table stream's
consumer and the notify queue's poller (infra/local.start_workers) against moto's server, and a
webhook receiver on 127.0.0.1 that must get one signed notification per crossing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.domain.notify import DELIVERY_HEADER, SIGNATURE_HEADER, verify
from chalicelib.domain.timeutil import format_ms
from infra.local import LOCALHOST, free_port, issue_key, local_stack
from tests.e2e.conftest import TABLE, Http, eventually

pytestmark = pytest.mark.e2e


class Receiver:
    """A webhook receiver on a free loopback port that keeps every request."""

    def __init__(self) -> None:
        received: list[tuple[dict[str, str], bytes]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append((dict(self.headers.items()), self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer((LOCALHOST, 0), Handler)
        self.url = f"http://{LOCALHOST}:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def test_a_signed_webhook_arrives_once_after_readings_cross_a_threshold(
    emulator_endpoint: str, receiver: Receiver
) -> None:
    emulator_port = int(emulator_endpoint.rsplit(":", 1)[1])
    with local_stack(free_port(), emulator_port, TABLE, quiet=True) as (endpoint, api, _):
        key = issue_key(endpoint, TABLE, "e2e-alerts", ["admin", "read", "ingest"], "alerts")
        http = Http(api, key)
        assert http.post("/buildings", {"building": "plant"})[0] == 201
        assert http.post("/buildings/plant/rooms", {"room": "boiler"})[0] == 201
        rule = {
            "metric": "temperature",
            "condition": "above",
            "threshold": 25,
            "minutes": 5,
            "notify": [{"webhook": receiver.url}],
        }
        status, created = http.post("/buildings/plant/rooms/boiler/alerts", rule)
        assert status == 201, created
        now = int(time.time() * 1000)
        readings = [
            {
                "building": "plant",
                "room": "boiler",
                "timestamp": format_ms(now - minutes * 60_000),
                "temperature": 31.0,
            }
            for minutes in (2, 1)
        ]
        assert http.post("/readings", {"readings": readings})[0] == 201

        headers, body = eventually(lambda: receiver.received[:1], "a webhook")[0]
        assert verify(created["secret"], body, headers[SIGNATURE_HEADER])
        payload = json.loads(body)
        assert payload["type"] == "alert.fired"
        assert headers[DELIVERY_HEADER] == payload["id"]
        assert (payload["alert"]["room"], payload["alert"]["value"]) == ("boiler", 31.0)

        def delivered() -> Any:
            items = http.get("/alerts", {"state": "active", "building": "plant"})[1]["items"]
            return items and items[0]["notifications"] and items[0]

        event = eventually(delivered, "the delivery recorded on the event")
        assert event["id"] == payload["id"]
        assert event["notifications"][0]["status"] == "delivered"
        assert (event["notifications"][0]["kind"], event["notifications"][0]["target"]) == (
            "webhook",
            0,
        )
        # Once: a second copy (a replayed stream batch, a redelivered message) would come within
        # a few polls of the workers (1 s each), so look again for a while, never asserting time.
        for _ in range(8):
            time.sleep(0.5)
            assert len(receiver.received) == 1
