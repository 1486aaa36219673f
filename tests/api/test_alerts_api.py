"""The alert routes through chalice.test.Client and moto: rules CRUD, events after readings
cross a threshold (the table's stream through the app's own handler), tenant isolation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.domain.access import Scope
from chalicelib.domain.timeutil import format_ms, now_ms
from infra.cli.keys import bootstrap_key
from tests.api.conftest import Api
from tests.fakes import InMemoryDelayQueue, RecordingNotifier
from tests.streams import drain_table

ROOM_RULES = "/buildings/hq/rooms/r101/alerts"
HOOK = "https://hooks.example.com/roomtemp"


def rule(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metric": "temperature",
        "condition": "above",
        "threshold": 26,
        "minutes": 5,
        "clear_threshold": 25,
        "notify": [{"webhook": HOOK}],
        "name": "too warm",
    }
    body.update(fields)
    return body


def request(api: Api, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    raw = b"" if body is None else json.dumps(body).encode()
    return api._request(method, path, raw, None)


@pytest.fixture
def queue() -> InMemoryDelayQueue:
    notify = InMemoryDelayQueue()
    wiring.override(notify_queue=notify)
    return notify


def test_a_rule_is_created_with_its_secret_shown_once(api: Api) -> None:
    status, created = api.post(ROOM_RULES, json=rule())
    assert status == 201
    assert created["secret"] and created["secret_set"] is True
    assert (created["building"], created["room"], created["unit"]) == ("hq", "r101", "C")
    assert api.headers["Location"] == f"/alerts/rules/{created['id']}"
    status, shown = api.get(f"/alerts/rules/{created['id']}")
    assert status == 200
    assert "secret" not in shown and shown["secret_set"] is True
    assert shown["notify"] == [{"webhook": HOOK}]


def test_rules_are_listed_per_room_and_per_building_page_by_page(api: Api) -> None:
    ids = {api.post(ROOM_RULES, json=rule())[1]["id"] for _ in range(3)}
    _, building_rule = api.post("/buildings/hq/alerts", json=rule(threshold=30))
    assert building_rule["room"] is None
    api.post("/buildings/hq/rooms/r102/alerts", json=rule())
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        status, page = api.get(ROOM_RULES, params)
        assert status == 200
        seen += [r["id"] for r in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert sorted(seen) == sorted(ids | {building_rule["id"]})
    assert len(api.get("/buildings/hq/alerts")[1]["items"]) == 5


def test_a_rule_is_changed_and_deleted(api: Api) -> None:
    rule_id = api.post(ROOM_RULES, json=rule())[1]["id"]
    status, changed = request(api, "PATCH", f"/alerts/rules/{rule_id}", {"threshold": 28})
    assert (status, changed["threshold"], changed["clear_threshold"]) == (200, 28, 25)
    status, body = request(api, "PATCH", f"/alerts/rules/{rule_id}", {"clear_threshold": 29})
    assert (status, body["Code"]) == (422, "ValidationError")
    assert request(api, "DELETE", f"/alerts/rules/{rule_id}")[0] == 204
    assert api.get(f"/alerts/rules/{rule_id}")[0] == 404


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"clear_threshold": 27}, 422),
        ({"condition": "silent"}, 422),
        ({"metric": "pressure"}, 422),
        ({"threshold": "26"}, 422),
        ({"minutes": 0}, 422),
        ({"notify": [{"webhook": "http://example.com/x"}]}, 422),
        ({"notify": [{"webhook": "https://169.254.169.254/latest"}]}, 422),
        ({"notify": [{"email": "a@example.com"}]}, 422),
        ({"extra": 1}, 422),
    ],
)
def test_a_bad_rule_is_refused(api: Api, fields: dict[str, Any], status: int) -> None:
    answer, body = api.post(ROOM_RULES, json=rule(**fields))
    assert answer == status
    assert set(body) == {"Code", "Message"}


def test_a_rule_on_a_missing_room_or_building_is_404(api: Api) -> None:
    assert api.post("/buildings/hq/rooms/nope/alerts", json=rule())[0] == 404
    assert api.post("/buildings/nope/alerts", json=rule())[0] == 404


def test_readings_that_cross_fire_an_active_alert_listed_with_its_room(
    api: Api, queue: InMemoryDelayQueue
) -> None:
    rule_id = api.post(ROOM_RULES, json=rule())[1]["id"]
    start = now_ms() - 10 * 60_000
    readings = [
        {
            "building": "hq",
            "room": "r101",
            "sensor_id": "s1",
            "timestamp": format_ms(start + i * 60_000),
            "temperature": 30.0,
        }
        for i in range(3)
    ]
    assert api.post("/readings", json={"readings": readings})[0] == 201
    drain_table(wiring.get_settings().table_name)
    status, page = api.get("/alerts", {"state": "active"})
    assert status == 200
    (event,) = page["items"]
    assert (event["rule_id"], event["room"], event["state"]) == (rule_id, "r101", "active")
    assert event["value"] == 30.0
    assert event["fired_at"] == format_ms(start + 2 * 60_000)
    assert api.get("/alerts", {"state": "cleared"})[1]["items"] == []
    assert api.get("/alerts", {"building": "hq", "room": "r102"})[1]["items"] == []
    (message,) = queue.bodies
    assert json.loads(message)["event_id"] == event["id"]
    # The notify queue's handler delivers it and records that on the event.
    from app import app

    notifier = RecordingNotifier()
    wiring.override(notifier=notifier)
    record = {"messageId": "m1", "receiptHandle": "h", "body": message, "attributes": {}}
    record |= {"eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:0:q"}
    answer = app.handler_map["notify"]({"Records": [record]}, None)
    assert answer == {"batchItemFailures": []}
    assert notifier.delivered[0].delivery_id == event["id"]
    listed = api.get("/alerts")[1]["items"][0]
    (delivery,) = listed["notifications"]
    assert delivery["status"] == "delivered"
    assert (delivery["target"], delivery["kind"], delivery["host"]) == (
        0,
        "webhook",
        "hooks.example.com",
    )
    # A read-scope key sees the delivery, never the URL (which may carry the receiver's token).
    reader = Api(api._client, bootstrap_key("t1", [Scope.READ], "reader")["key"])
    status, seen = reader.get("/alerts")
    assert status == 200 and seen["items"][0]["notifications"][0]["status"] == "delivered"
    assert "/roomtemp" not in json.dumps(seen)


def fire(api: Api, building: str = "hq", room: str = "r101") -> str:
    """A rule on the room and readings that cross it, through the stream: the event's id."""
    path = f"/buildings/{building}/rooms/{room}/alerts"
    assert api.post(path, json=rule())[0] == 201
    start = now_ms() - 3 * 60_000
    readings = [
        {
            "building": building,
            "room": room,
            "sensor_id": "s1",
            "timestamp": format_ms(start + i * 60_000),
            "temperature": 30.0,
        }
        for i in range(3)
    ]
    assert api.post("/readings", json={"readings": readings})[0] == 201
    drain_table(wiring.get_settings().table_name)
    (event,) = [e for e in api.get("/alerts", {"building": building})[1]["items"]]
    return str(event["id"])


def test_another_tenants_rules_and_alerts_are_404_and_invisible(
    api: Api, queue: InMemoryDelayQueue
) -> None:
    fire(api)  # the first tenant has an active alert
    rule_id = api.get(ROOM_RULES)[1]["items"][0]["id"]
    other = Api(api._client, bootstrap_key("t2", [Scope.ADMIN, Scope.READ], "other")["key"])
    assert other.get(f"/alerts/rules/{rule_id}")[0] == 404
    assert request(other, "DELETE", f"/alerts/rules/{rule_id}")[0] == 404
    assert request(other, "PATCH", f"/alerts/rules/{rule_id}", {"threshold": 1})[0] == 404
    assert other.get(ROOM_RULES)[0] == 404
    assert other.post(ROOM_RULES, json=rule())[0] == 404
    assert other.get("/alerts") == (200, {"items": [], "next_cursor": None})
    assert other.get("/alerts", {"state": "active"}) == (200, {"items": [], "next_cursor": None})
    assert api.get(f"/alerts/rules/{rule_id}")[0] == 200
    assert len(api.get("/alerts", {"state": "active"})[1]["items"]) == 1


def test_a_key_bound_to_another_building_cannot_reach_the_rule(api: Api) -> None:
    rule_id = api.post(ROOM_RULES, json=rule())[1]["id"]
    assert api.post("/buildings", json={"building": "annex"})[0] == 201
    status, bound = api.post(
        "/keys", json={"scopes": ["admin", "read"], "buildings": ["annex"], "name": "bound"}
    )
    assert status == 201, bound
    other = Api(api._client, bound["key"])
    assert other.get(f"/alerts/rules/{rule_id}")[0] == 404
    assert other.get("/alerts", {"building": "hq"})[0] == 404


def test_reading_rules_needs_the_admin_scope_and_events_the_read_scope(api: Api) -> None:
    reader = Api(api._client, bootstrap_key("t1", [Scope.READ], "reader")["key"])
    assert reader.get(ROOM_RULES)[0] == 403
    assert reader.get("/alerts")[0] == 200


def test_a_key_bound_to_buildings_pages_through_their_events_only(
    api: Api, queue: InMemoryDelayQueue
) -> None:
    for building in ("annex", "depot", "zoo"):
        assert api.post("/buildings", json={"building": building})[0] == 201
        assert api.post(f"/buildings/{building}/rooms", json={"room": "r1"})[0] == 201
    ids = {b: fire(api, b, "r1") for b in ("annex", "depot", "zoo")}
    fire(api)  # hq: not the bound key's
    status, bound = api.post(
        "/keys", json={"scopes": ["read"], "buildings": ["zoo", "annex"], "name": "bound"}
    )
    assert status == 201, bound
    reader = Api(api._client, bound["key"])
    pages: list[list[str]] = []
    params: dict[str, Any] = {"limit": 1}
    while True:
        status, page = reader.get("/alerts", params)
        assert status == 200
        pages.append([e["building"] for e in page["items"]])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert pages == [["annex"], ["zoo"]]  # full pages, no empty one
    assert reader.get("/alerts", {"building": "depot"})[0] == 404
    assert ids["depot"] not in json.dumps(reader.get("/alerts")[1])


def test_changing_a_rules_unit_needs_its_threshold_and_closes_its_active_alert(
    api: Api, queue: InMemoryDelayQueue
) -> None:
    fire(api)
    rule_id = api.get(ROOM_RULES)[1]["items"][0]["id"]
    path = f"/alerts/rules/{rule_id}"
    for body in ({"unit": "F"}, {"unit": None}, {"metric": "co2"}, {"condition": "below"}):
        status, answer = request(api, "PATCH", path, body)
        assert (status, set(answer)) == (422, {"Code", "Message"}), body
    assert api.get(path)[1]["unit"] == "C"
    status, changed = request(api, "PATCH", path, {"unit": "F", "threshold": 90})
    assert (status, changed["unit"], changed["threshold"]) == (200, "F", 90)
    assert changed["clear_threshold"] is None  # 25 was °C: not carried over as °F
    (event,) = api.get("/alerts")[1]["items"]
    assert (event["state"], event["cleared_by"]) == ("cleared", "rule changed")


def test_deleting_a_room_takes_its_alerts_with_it(api: Api, queue: InMemoryDelayQueue) -> None:
    fire(api)
    assert request(api, "DELETE", "/buildings/hq/rooms/r101?force=true")[0] == 204
    assert api.get("/alerts")[1]["items"] == []
    assert api.post("/buildings/hq/rooms", json={"room": "r101"})[0] == 201
    assert api.get(ROOM_RULES)[1]["items"] == []


def test_a_notify_invocation_near_its_end_hands_its_messages_back_unsent(
    api: Api, queue: InMemoryDelayQueue
) -> None:
    from app import app

    fire(api)
    (message,) = queue.take()
    notifier = RecordingNotifier()
    wiring.override(notifier=notifier)

    class Context:  # a Lambda context with 8 s left: less than one delivery's deadline + reserve
        def get_remaining_time_in_millis(self) -> int:
            return 8_000

    record = {"messageId": "m1", "receiptHandle": "h", "body": message, "attributes": {}}
    record |= {"eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:0:q"}
    answer = app.handler_map["notify"]({"Records": [record]}, Context())
    assert answer == {"batchItemFailures": []}
    assert notifier.attempts == []
    assert queue.later == [(message, 0)]  # the same message: its attempt not counted
