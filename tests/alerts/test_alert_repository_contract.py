"""One contract, two adapters: the in-memory fake and DynamoDB (moto, the table from infra/)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.aws.alerts import DynamoAlertRepository
from chalicelib.domain.alerts import (
    AlertEvent,
    AlertRule,
    AlertState,
    Condition,
    Delivery,
    RoomState,
    Transition,
)
from chalicelib.domain.models import Metric
from tests.factories import MINUTE, T0, dynamo_table
from tests.fakes import InMemoryAlertRepository


@pytest.fixture(params=["fake", "dynamodb"])
def repo(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "fake":
        yield InMemoryAlertRepository()
        return
    client = request.getfixturevalue("dynamodb")
    yield DynamoAlertRepository(dynamo_table(client, request.getfixturevalue("table_name")))


def rule(rule_id: str = "ar1", **fields: Any) -> AlertRule:
    base: dict[str, Any] = {
        "rule_id": rule_id,
        "tenant": "t1",
        "building": "hq",
        "room": "r101",
        "metric": Metric.TEMPERATURE,
        "condition": Condition.ABOVE,
        "threshold": 26.0,
        "minutes": 5,
        "notify": [{"webhook": "https://hooks.example.com/x"}],
        "name": "warm",
        "secret": "s",
        "created_ms": T0,
    }
    base.update(fields)
    return AlertRule.model_validate(base)


def fire(repo: Any, r: AlertRule, room: str, event_id: str, at: int = T0) -> bool:
    before = RoomState(rule_id=r.rule_id, room=room)
    after = RoomState(rule_id=r.rule_id, room=room, transitions=1, event_id=event_id)
    event = AlertEvent(
        event_id=event_id,
        tenant=r.tenant,
        rule_id=r.rule_id,
        name=r.name,
        metric=r.metric,
        condition=r.condition,
        building=r.building,
        room=room,
        state=AlertState.ACTIVE,
        value=27.5,
        threshold=r.threshold,
        unit="C",
        fired_ms=at,
    )
    ok: bool = repo.transition(r.tenant, r.building, before, after, event)
    return ok


def clear(repo: Any, r: AlertRule, room: str, event_id: str) -> bool:
    opened = repo.get_event(r.tenant, r.building, event_id)
    before = RoomState(rule_id=r.rule_id, room=room, transitions=1, event_id=event_id)
    after = before.model_copy(update={"transitions": 2})
    closed = opened.model_copy(
        update={"state": AlertState.CLEARED, "cleared_ms": T0 + MINUTE, "cleared_value": 24.0}
    )
    ok: bool = repo.transition(r.tenant, r.building, before, after, closed)
    return ok


def test_a_rule_is_found_by_id_by_its_tenant_only(repo: Any) -> None:
    repo.create_rule(rule())
    assert repo.get_rule("t1", "ar1") == rule()
    assert repo.get_rule("t2", "ar1") is None


def test_one_read_returns_the_room_and_building_rules_of_a_building(repo: Any) -> None:
    repo.create_rule(rule("ar1"))
    repo.create_rule(rule("ar2", room=None))
    repo.create_rule(rule("ar3", building="annex"))
    repo.create_rule(rule("ar4", tenant="t2"))
    assert sorted(r.rule_id for r in repo.rules_of_building("t1", "hq")) == ["ar1", "ar2"]


def test_silent_rules_are_listed_per_tenant_and_follow_a_changed_condition(repo: Any) -> None:
    silent = rule("ar1", condition=Condition.SILENT, threshold=None)
    repo.create_rule(silent)
    repo.create_rule(rule("ar2"))
    repo.create_rule(rule("ar3", tenant="t2", condition=Condition.SILENT, threshold=None))
    assert [r.rule_id for r in repo.silent_rules("t1")] == ["ar1"]
    repo.save_rule(silent.model_copy(update={"condition": Condition.BELOW, "threshold": 1.0}))
    assert repo.silent_rules("t1") == []


def test_a_transition_happens_once(repo: Any) -> None:
    r = rule()
    repo.create_rule(r)
    assert fire(repo, r, "r101", "e1")
    assert not fire(repo, r, "r101", "e1")  # a replay computes the same transition
    states = repo.states("t1", "hq", [("ar1", "r101"), ("ar1", "r102")])
    assert states == {
        ("ar1", "r101"): RoomState(rule_id="ar1", room="r101", transitions=1, event_id="e1")
    }
    assert clear(repo, r, "r101", "e1")
    assert not clear(repo, r, "r101", "e1")
    event = repo.get_event("t1", "hq", "e1")
    assert (event.state, event.cleared_ms, event.cleared_value) == (
        AlertState.CLEARED,
        T0 + MINUTE,
        24.0,
    )
    assert event.value == 27.5


def test_the_enqueued_mark_only_rises(repo: Any) -> None:
    r = rule()
    fire(repo, r, "r101", "e1")
    state = RoomState(rule_id="ar1", room="r101", transitions=1, enqueued=1, event_id="e1")
    repo.mark_enqueued("t1", "hq", state)
    repo.mark_enqueued("t1", "hq", state.model_copy(update={"enqueued": 0}))
    assert repo.states("t1", "hq", [("ar1", "r101")])[("ar1", "r101")].enqueued == 1


def test_deliveries_are_kept_on_the_event_per_delivery_and_target(repo: Any) -> None:
    r = rule()
    fire(repo, r, "r101", "e1")
    first = Delivery(
        delivery_id="d1",
        transition=Transition.FIRED,
        target="https://a",
        status="pending",
        attempts=1,
    )
    repo.record_delivery("t1", "hq", "e1", 0, first)
    repo.record_delivery("t1", "hq", "e1", 1, first.model_copy(update={"target": "https://b"}))
    repo.record_delivery("t1", "hq", "e1", 0, first.model_copy(update={"status": "delivered"}))
    event = repo.get_event("t1", "hq", "e1")
    assert [(d.target, d.status) for d in event.deliveries] == [
        ("https://a", "delivered"),
        ("https://b", "pending"),
    ]


def test_events_list_by_state_building_and_room_page_by_page(repo: Any) -> None:
    r = rule(room=None)
    repo.create_rule(r)
    fire(repo, r, "r102", "e2", at=T0 + 1)
    fire(repo, r, "r101", "e1")
    fire(repo, rule(room=None, building="annex"), "a1", "e3")
    fire(repo, rule(tenant="t2"), "r101", "e4")
    clear(repo, r, "r102", "e2")

    def ids(**filters: Any) -> list[str]:
        found = []
        after = None
        while True:
            args = {"states": ["active", "cleared"], "building": None, "room": None, **filters}
            page, after = repo.list_events("t1", limit=1, after=after, **args)
            found += [e.event_id for e in page]
            if after is None:
                return found

    assert ids() == ["e3", "e1", "e2"]  # active first (by building, room), then cleared
    assert ids(states=["cleared"]) == ["e2"]
    assert ids(building="hq") == ["e1", "e2"]
    assert ids(building="hq", room="r102") == ["e2"]
    assert ids(states=["active"], building="hq", room="r102") == []


def test_a_deleted_rule_takes_its_states_and_closes_its_active_events(repo: Any) -> None:
    r = rule()
    repo.create_rule(r)
    fire(repo, r, "r101", "e1")
    repo.delete_rule(r, T0 + 5 * MINUTE)
    assert repo.get_rule("t1", "ar1") is None
    assert repo.states("t1", "hq", [("ar1", "r101")]) == {}
    event = repo.get_event("t1", "hq", "e1")
    assert (event.state, event.cleared_ms) == (AlertState.CLEARED, T0 + 5 * MINUTE)


def test_deleting_a_buildings_alerts_leaves_nothing_behind(repo: Any) -> None:
    r = rule()
    repo.create_rule(r)
    repo.create_rule(rule("ar2", building="annex"))
    fire(repo, r, "r101", "e1")
    assert repo.delete_for_building("t1", "hq") == 3  # rule, state, event
    assert repo.get_rule("t1", "ar1") is None
    assert repo.rules_of_building("t1", "hq") == []
    assert repo.get_event("t1", "hq", "e1") is None
    assert repo.list_events("t1", ["active", "cleared"], None, None, 10, None) == ([], None)
    assert repo.get_rule("t1", "ar2") is not None
