"""Registry behaviour over HTTP (chalice.test.Client), on the in-memory and the DynamoDB backend."""

from __future__ import annotations

import pytest
from access_world import BUILDING_A, BUILDING_B, ROOM_A, SENSOR_A, Api

from chalicelib.domain.cursors import encode_cursor
from tests.conftest import TEST_CURSOR_SECRET

SECRET = TEST_CURSOR_SECRET.encode()


def test_building_can_be_created_read_listed_patched_and_deleted(api: Api) -> None:
    created = api.ok(
        "POST", "/buildings", body={"building": "lab", "name": "Lab", "metadata": {"area": 40}}
    )
    assert created["building"] == "lab" and created["metadata"] == {"area": 40}
    assert api.ok("GET", "/buildings/lab")["name"] == "Lab"
    assert {b["building"] for b in api.ok("GET", "/buildings")["items"]} == {BUILDING_A, "lab"}
    patched = api.ok("PATCH", "/buildings/lab", body={"name": "Lab 2"})
    assert patched["name"] == "Lab 2" and patched["metadata"] == {"area": 40}
    assert api.call("DELETE", "/buildings/lab").status_code == 204
    assert api.call("GET", "/buildings/lab").status_code == 404


def test_building_ids_are_each_tenants_own(api: Api) -> None:
    # A taken id conflicts within its tenant
    assert api.call("POST", "/buildings", body={"building": BUILDING_A}).status_code == 409
    # Another tenant's id is free: creating it neither conflicts nor reveals the other building
    response = api.call("POST", "/buildings", body={"building": BUILDING_B, "name": "Mine"})
    assert response.status_code == 201
    assert api.ok("GET", f"/buildings/{BUILDING_B}")["name"] == "Mine"
    assert api.ok("GET", f"/buildings/{BUILDING_B}/rooms")["items"] == []
    theirs = api.ok("GET", f"/buildings/{BUILDING_B}", key="admin-b")
    assert theirs["name"] != "Mine"
    assert [
        r["room"] for r in api.ok("GET", f"/buildings/{BUILDING_B}/rooms", key="admin-b")["items"]
    ] == ["b1"]


def test_patch_rejects_fields_other_than_name_and_metadata(api: Api) -> None:
    response = api.call("PATCH", f"/buildings/{BUILDING_A}", body={"tenant": "tenant-b"})
    assert response.status_code == 422


@pytest.mark.parametrize("kind", ["buildings", "rooms", "sensors"])
def test_lists_page_through_everything_with_the_cursor(api: Api, kind: str) -> None:
    # Given 5 more things of the kind (6 buildings with a-hq, 6 rooms with r1, 6 sensors)
    base = {
        "buildings": "/buildings",
        "rooms": f"/buildings/{BUILDING_A}/rooms",
        "sensors": "/sensors",
    }[kind]
    field = {"buildings": "building", "rooms": "room", "sensors": "sensor_id"}[kind]
    for i in range(5):
        api.ok("POST", base, body={field: f"{kind}-{i}"})

    # When the list is read 4 at a time
    seen: list[str] = []
    url = f"{base}?limit=4"
    pages = 0
    while True:
        page = api.ok("GET", url)
        pages += 1
        seen.extend(item[field] for item in page["items"])
        if page["next_cursor"] is None:
            break
        url = f"{base}?limit=4&cursor={page['next_cursor']}"

    # Then every item came exactly once, over two pages
    assert pages == 2
    assert len(seen) == len(set(seen)) == 6


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        encode_cursor({"k": "rooms", "a": "x"}, SECRET),
        encode_cursor({"k": "buildings"}, SECRET),
        encode_cursor({"k": "buildings", "a": "x" * 2000}, SECRET),
        encode_cursor({"k": "buildings", "a": "b1"}, b"someone else's secret"),
    ],
    ids=["not-base64", "another-lists-cursor", "no-position", "oversized-id", "minted"],
)
def test_a_forged_cursor_is_a_bad_request(api: Api, cursor: str) -> None:
    response = api.call("GET", f"/buildings?cursor={cursor}")
    assert response.status_code == 400
    assert response.json_body["Code"] == "BadRequest"


def test_room_can_be_created_read_patched_and_deleted(api: Api) -> None:
    base = f"/buildings/{BUILDING_A}/rooms"
    api.ok("POST", base, body={"room": "kitchen", "metadata": {"setpoint": 21}})
    assert api.call("POST", base, body={"room": "kitchen"}).status_code == 409
    assert api.ok("GET", f"{base}/kitchen")["metadata"] == {"setpoint": 21}
    assert api.ok("PATCH", f"{base}/kitchen", body={"name": "Kitchen"})["name"] == "Kitchen"
    assert api.call("DELETE", f"{base}/kitchen").status_code == 204
    assert api.call("GET", f"{base}/kitchen").status_code == 404


def test_room_in_a_missing_building_is_not_found(api: Api) -> None:
    assert api.call("POST", "/buildings/nowhere/rooms", body={"room": "x"}).status_code == 404


def test_sensor_can_be_created_read_patched_and_deleted(api: Api) -> None:
    created = api.ok(
        "POST", "/sensors", body={"sensor_id": "s-2", "building": BUILDING_A, "room": ROOM_A}
    )
    assert (created["building"], created["room"]) == (BUILDING_A, ROOM_A)
    assert api.ok("PATCH", "/sensors/s-2", body={"name": "window"})["name"] == "window"
    assert api.ok("GET", "/sensors/s-2")["name"] == "window"
    assert api.call("DELETE", "/sensors/s-2").status_code == 204
    assert api.call("GET", "/sensors/s-2").status_code == 404


def test_sensor_in_another_tenants_room_is_not_found(api: Api) -> None:
    body = {"sensor_id": "s-x", "building": BUILDING_B, "room": "b1"}
    assert api.call("POST", "/sensors", body=body).status_code == 404


def test_reassigned_sensor_keeps_its_old_readings_in_the_old_room(api: Api) -> None:
    # Given sensor s-a1 in r1 with 3 readings, and a second room
    api.ok("POST", f"/buildings/{BUILDING_A}/rooms", body={"room": "r2"})
    before = api.ok("GET", f"/buildings/{BUILDING_A}/rooms/{ROOM_A}/readings", key="read-a")

    # When it moves to r2 and sends a sensor-only reading
    moved = api.ok("PUT", f"/sensors/{SENSOR_A}/room", body={"building": BUILDING_A, "room": "r2"})
    assert moved["room"] == "r2"
    api.ok("POST", "/readings", key="ingest-a", body={"sensor_id": SENSOR_A, "temperature": 30.0})

    # Then r1 still holds exactly its old readings and r2 the new one
    after = api.ok("GET", f"/buildings/{BUILDING_A}/rooms/{ROOM_A}/readings", key="read-a")
    assert after["items"] == before["items"] and len(after["items"]) == 3
    latest = api.ok("GET", f"/buildings/{BUILDING_A}/rooms/r2/latest", key="read-a")
    assert latest["temperature"] == 30.0 and latest["sensor_id"] == SENSOR_A


def test_assigning_to_a_missing_room_is_not_found(api: Api) -> None:
    body = {"building": BUILDING_A, "room": "nope"}
    assert api.call("PUT", f"/sensors/{SENSOR_A}/room", body=body).status_code == 404


def test_sensor_only_reading_lands_in_its_sensors_room(api: Api) -> None:
    response = api.call(
        "POST", "/readings", key="ingest-a", body={"sensor_id": SENSOR_A, "temperature": 25.5}
    )
    assert response.status_code == 201
    latest = api.ok("GET", f"/buildings/{BUILDING_A}/rooms/{ROOM_A}/latest", key="read-a")
    assert latest["temperature"] == 25.5


@pytest.mark.parametrize("sensor", ["never-registered", "s-b-unassigned"])
def test_sensor_only_reading_of_an_unknown_or_roomless_sensor_is_unprocessable(
    api: Api, sensor: str
) -> None:
    api.ok("POST", "/sensors", body={"sensor_id": "s-b-unassigned"})
    response = api.call(
        "POST", "/readings", key="ingest-a", body={"sensor_id": sensor, "temperature": 20.0}
    )
    assert response.status_code == 422
    assert response.json_body["Code"] == "ValidationError"


def test_another_tenants_sensor_is_unknown_to_a_sensor_only_reading(api: Api) -> None:
    # s-a1 is tenant A's; tenant B's writer naming it must not land in A's room
    response = api.call(
        "POST", "/readings", key="admin-b", body={"sensor_id": SENSOR_A, "temperature": 99.0}
    )
    assert response.status_code == 422
    latest = api.ok("GET", f"/buildings/{BUILDING_A}/rooms/{ROOM_A}/latest", key="read-a")
    assert latest["temperature"] != 99.0


def test_reading_naming_a_new_building_and_room_creates_them_for_the_writer(api: Api) -> None:
    body = {"building": "annex", "room": "hall", "temperature": 19.0}
    assert api.call("POST", "/readings", key="ingest-a", body=body).status_code == 201
    assert api.ok("GET", "/buildings/annex/rooms/hall")["room"] == "hall"
    assert api.call("GET", "/buildings/annex", key="admin-b").status_code == 404


def test_a_reading_naming_another_tenants_building_lands_in_the_writers_own(api: Api) -> None:
    # When tenant A writes to the id of B's building and room
    body = {"building": BUILDING_B, "room": "b1", "temperature": 50.0}
    assert api.call("POST", "/readings", key="ingest-a", body=body).status_code == 201
    # Then B's room is untouched, and A has a building of that id, with that reading alone
    theirs = api.ok("GET", f"/buildings/{BUILDING_B}/rooms/b1/latest", key="admin-b")
    assert theirs["temperature"] == 18.0
    mine = api.ok("GET", f"/buildings/{BUILDING_B}/rooms/b1/latest", key="read-a")
    assert mine["temperature"] == 50.0
    page = api.ok("GET", f"/buildings/{BUILDING_B}/rooms/b1/readings", key="read-a")
    assert [r["temperature"] for r in page["items"]] == [50.0]


def test_a_batch_naming_both_tenants_buildings_writes_only_the_writers(api: Api) -> None:
    body = {
        "readings": [
            {"building": BUILDING_A, "room": ROOM_A, "temperature": 20.0},
            {"building": BUILDING_B, "room": "b1", "temperature": 50.0},
        ]
    }
    response = api.call("POST", "/readings", key="ingest-a", body=body)
    assert response.status_code == 201 and response.json_body["accepted"] == 2
    theirs = api.ok("GET", f"/buildings/{BUILDING_B}/rooms/b1/latest", key="admin-b")
    assert theirs["temperature"] == 18.0


def test_a_deleted_buildings_id_taken_by_another_tenant_inherits_nothing(api: Api) -> None:
    # Given B's building, with a room and readings, deleted by B
    before = f"/buildings/{BUILDING_B}/rooms/b1/average?minutes=1440"
    assert api.ok("GET", before, key="admin-b")["count"] == 1
    assert api.call("DELETE", f"/buildings/{BUILDING_B}?force=true", key="admin-b").status_code == (
        204
    )
    # When A creates a building of the same id, and a room of the same name
    assert api.call("POST", "/buildings", body={"building": BUILDING_B}).status_code == 201
    room = {"room": "b1"}
    assert api.call("POST", f"/buildings/{BUILDING_B}/rooms", body=room).status_code == 201
    # Then A's room holds none of B's readings, old or summarised
    base = f"/buildings/{BUILDING_B}/rooms/b1"
    assert api.call("GET", f"{base}/latest", key="read-a").status_code == 404
    assert api.ok("GET", f"{base}/readings", key="read-a")["items"] == []
    assert api.ok("GET", f"{base}/average?minutes=1440", key="read-a")["count"] == 0


def test_a_building_deleted_and_created_again_by_its_tenant_starts_empty(api: Api) -> None:
    assert api.call("DELETE", f"/buildings/{BUILDING_B}?force=true", key="admin-b").status_code == (
        204
    )
    body = {"building": BUILDING_B}
    assert api.call("POST", "/buildings", key="admin-b", body=body).status_code == 201
    body = {"room": "b1"}
    assert api.call(
        "POST", f"/buildings/{BUILDING_B}/rooms", key="admin-b", body=body
    ).status_code == (201)
    base = f"/buildings/{BUILDING_B}/rooms/b1"
    assert api.call("GET", f"{base}/latest", key="admin-b").status_code == 404
    assert api.ok("GET", f"{base}/readings", key="admin-b")["items"] == []


def test_deleting_a_room_with_readings_conflicts_unless_forced(api: Api) -> None:
    room = f"/buildings/{BUILDING_A}/rooms/{ROOM_A}"
    assert api.call("DELETE", room).status_code == 409
    assert api.call("GET", f"{room}/latest", key="read-a").status_code == 200

    assert api.call("DELETE", f"{room}?force=true").status_code == 204

    assert api.call("GET", f"{room}/average", key="read-a").status_code == 404
    api.ok("POST", f"/buildings/{BUILDING_A}/rooms", body={"room": ROOM_A})
    assert api.ok("GET", f"{room}/average", key="read-a")["count"] == 0


def test_deleting_a_building_with_readings_conflicts_unless_forced(api: Api) -> None:
    assert api.call("DELETE", f"/buildings/{BUILDING_A}").status_code == 409
    assert api.ok("GET", f"/buildings/{BUILDING_A}/rooms/{ROOM_A}")["room"] == ROOM_A

    assert api.call("DELETE", f"/buildings/{BUILDING_A}?force=true").status_code == 204

    assert api.call("GET", f"/buildings/{BUILDING_A}").status_code == 404
    # The sensor stays registered, without a room; a recreated room starts empty.
    assert api.ok("GET", f"/sensors/{SENSOR_A}")["room"] is None
    api.ok("POST", "/buildings", body={"building": BUILDING_A})
    api.ok("POST", f"/buildings/{BUILDING_A}/rooms", body={"room": ROOM_A})
    assert (
        api.ok("GET", f"/buildings/{BUILDING_A}/rooms/{ROOM_A}/average", key="read-a")["count"] == 0
    )


def test_deleting_an_empty_room_needs_no_force(api: Api) -> None:
    api.ok("POST", f"/buildings/{BUILDING_A}/rooms", body={"room": "empty"})
    assert api.call("DELETE", f"/buildings/{BUILDING_A}/rooms/empty").status_code == 204


def test_rooms_list_carries_latest_reading_and_15_minute_average(api: Api) -> None:
    api.ok("POST", f"/buildings/{BUILDING_A}/rooms", body={"room": "quiet"})
    rooms = {
        r["room"]: r for r in api.ok("GET", f"/buildings/{BUILDING_A}/rooms", key="read-a")["items"]
    }
    assert rooms[ROOM_A]["latest"]["temperature"] == 21.0
    assert rooms[ROOM_A]["average_15m"]["count"] == 3
    assert rooms[ROOM_A]["average_15m"]["average"] == pytest.approx(22.0)
    assert rooms["quiet"]["latest"] is None
    assert rooms["quiet"]["average_15m"]["count"] == 0
