"""One contract, two adapters: the in-memory fake and DynamoDB (moto, the table from infra/)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.aws.alerts import DynamoAlertRepository
from chalicelib.domain.alerts import (
    CLOSED_BY_RULE_CHANGE,
    AlertEvent,
    AlertRule,
    AlertState,
    Condition,
    Delivery,
    RoomState,
    Transition,
)
from chalicelib.domain.models import Metric
from chalicelib.domain.timeutil import now_ms
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


def fire(
    repo: Any, r: AlertRule, room: str, event_id: str, at: int = T0, *, create: bool = True
) -> bool:
    if create and repo.get_rule(r.tenant, r.rule_id) is None:
        repo.create_rule(r)
    before = RoomState(rule_id=r.rule_id, room=room)
    after = RoomState(
        rule_id=r.rule_id, room=room, transitions=1, event_id=event_id, evaluated_ms=at
    )
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


def test_every_tenants_silent_rules_are_listed_and_follow_a_changed_condition(repo: Any) -> None:
    silent = rule("ar1", condition=Condition.SILENT, threshold=None)
    repo.create_rule(silent)
    repo.create_rule(rule("ar2"))
    repo.create_rule(rule("ar3", tenant="t2", condition=Condition.SILENT, threshold=None))
    repo.create_rule(rule("ar4", building="annex", condition=Condition.SILENT, threshold=None))
    found = {(r.tenant, r.building, r.rule_id) for r in repo.silent_rules()}
    assert found == {("t1", "hq", "ar1"), ("t2", "hq", "ar3"), ("t1", "annex", "ar4")}
    repo.save_rule(silent.model_copy(update={"condition": Condition.BELOW, "threshold": 1.0}))
    assert "ar1" not in {r.rule_id for r in repo.silent_rules()}


def test_a_transition_of_a_deleted_rule_is_refused_and_leaves_no_event(repo: Any) -> None:
    r = rule()
    repo.create_rule(r)
    repo.delete_rule(r, T0)
    assert not fire(repo, r, "r101", "e1", create=False)  # a warm cache still had the rule
    assert repo.get_event("t1", "hq", "e1") is None
    assert repo.states("t1", "hq", [("ar1", "r101")]) == {}


def test_the_high_water_mark_only_rises_and_a_marked_room_can_still_fire(repo: Any) -> None:
    r = rule()
    repo.create_rule(r)
    mark = RoomState(rule_id="ar1", room="r101", evaluated_ms=T0 + 2 * MINUTE)
    repo.mark_evaluated("t1", "hq", [mark])
    repo.mark_evaluated("t1", "hq", [mark.model_copy(update={"evaluated_ms": T0})])
    (stored,) = repo.states("t1", "hq", [("ar1", "r101")]).values()
    assert (stored.evaluated_ms, stored.transitions) == (T0 + 2 * MINUTE, 0)
    assert fire(repo, r, "r101", "e1", at=T0 + 3 * MINUTE)
    (stored,) = repo.states("t1", "hq", [("ar1", "r101")]).values()
    assert (stored.evaluated_ms, stored.transitions) == (T0 + 3 * MINUTE, 1)


def test_a_transition_is_listed_unsent_until_its_notification_is_enqueued(repo: Any) -> None:
    r = rule()
    fire(repo, r, "r101", "e1")
    later = now_ms() + 2 * MINUTE
    (listed,) = repo.unsent_states(later)
    assert (listed[0].rule_id, listed[1].room, listed[1].transitions) == ("ar1", "r101", 1)
    assert repo.unsent_states(now_ms() - 2 * MINUTE) == []  # listed just now: not yet due
    repo.mark_enqueued("t1", "hq", listed[1].model_copy(update={"enqueued": 1}))
    assert repo.unsent_states(later) == []


def test_resetting_a_rules_states_closes_its_active_events_with_the_reason(repo: Any) -> None:
    r = rule()
    fire(repo, r, "r101", "e1")
    repo.reset_states(r, T0 + MINUTE, CLOSED_BY_RULE_CHANGE)
    assert repo.states("t1", "hq", [("ar1", "r101")]) == {}
    event = repo.get_event("t1", "hq", "e1")
    assert (event.state, event.cleared_ms, event.cleared_by) == (
        AlertState.CLEARED,
        T0 + MINUTE,
        CLOSED_BY_RULE_CHANGE,
    )
    assert repo.get_rule("t1", "ar1") == r


def test_deleting_a_rooms_alerts_leaves_the_other_rooms_alone(repo: Any) -> None:
    mine, everywhere = rule("ar1"), rule("ar2", room=None)
    fire(repo, mine, "r101", "e1")
    fire(repo, everywhere, "r101", "e2")
    fire(repo, everywhere, "r102", "e3")
    assert repo.delete_for_room("t1", "hq", "r101") == 6  # rule + pointer, 2 states, 2 events
    assert repo.get_rule("t1", "ar1") is None
    assert repo.get_rule("t1", "ar2") == everywhere
    assert repo.states("t1", "hq", [("ar2", "r101"), ("ar1", "r101")]) == {}
    assert repo.get_event("t1", "hq", "e1") is None and repo.get_event("t1", "hq", "e2") is None
    assert repo.get_event("t1", "hq", "e3") is not None
    assert len(repo.states("t1", "hq", [("ar2", "r102")])) == 1


def test_a_transition_happens_once(repo: Any) -> None:
    r = rule()
    repo.create_rule(r)
    assert fire(repo, r, "r101", "e1")
    assert not fire(repo, r, "r101", "e1")  # a replay computes the same transition
    states = repo.states("t1", "hq", [("ar1", "r101"), ("ar1", "r102")])
    assert states == {
        ("ar1", "r101"): RoomState(
            rule_id="ar1", room="r101", transitions=1, event_id="e1", evaluated_ms=T0
        )
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
        target=0,
        kind="webhook",
        host="a.example.com",
        ref="r0",
        status="pending",
        attempts=1,
    )
    repo.record_delivery("t1", "hq", "e1", 0, first)
    repo.record_delivery("t1", "hq", "e1", 1, first.model_copy(update={"target": 1}))
    repo.record_delivery("t1", "hq", "e1", 0, first.model_copy(update={"status": "delivered"}))
    event = repo.get_event("t1", "hq", "e1")
    assert [(d.target, d.status, d.ref) for d in event.deliveries] == [
        (0, "delivered", "r0"),
        (1, "pending", "r0"),
    ]


def test_events_list_by_state_building_and_room_page_by_page(repo: Any) -> None:
    r = rule(room=None)
    repo.create_rule(r)
    fire(repo, r, "r102", "e2", at=T0 + 1)
    fire(repo, r, "r101", "e1")
    fire(repo, rule("ar9", room=None, building="annex"), "a1", "e3")
    fire(repo, rule(tenant="t2"), "r101", "e4")
    clear(repo, r, "r102", "e2")

    def ids(**filters: Any) -> list[str]:
        found = []
        after = None
        while True:
            args = {"states": ["active", "cleared"], "buildings": None, "room": None, **filters}
            page, after = repo.list_events("t1", limit=1, after=after, **args)
            found += [e.event_id for e in page]
            if after is None:
                return found

    assert ids() == ["e3", "e1", "e2"]  # active first (by building, room), then cleared
    assert ids(states=["cleared"]) == ["e2"]
    assert ids(buildings=["hq"]) == ["e1", "e2"]
    assert ids(buildings=["hq"], room="r102") == ["e2"]
    assert ids(states=["active"], buildings=["hq"], room="r102") == []
    assert ids(buildings=["hq", "annex"]) == ["e3", "e1", "e2"]  # pages full across buildings
    assert ids(buildings=["nope"]) == []


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


def test_the_silence_check_reads_a_few_partitions_however_many_tenants(
    request: pytest.FixtureRequest,
) -> None:
    from chalicelib.aws.keys import SILENT_RULE_SHARDS

    client = request.getfixturevalue("dynamodb")
    table = dynamo_table(client, request.getfixturevalue("table_name"))
    repo = DynamoAlertRepository(table)
    for n in range(40):
        repo.create_rule(rule(f"ar{n}", tenant=f"t{n}", condition=Condition.SILENT, threshold=None))
    queries: list[str] = []
    original = table.call

    def counted(operation: str, **kwargs: Any) -> Any:
        queries.append(operation)
        return original(operation, **kwargs)

    table.call = counted  # type: ignore[method-assign]
    assert len(repo.silent_rules()) == 40
    assert queries == ["query"] * SILENT_RULE_SHARDS
