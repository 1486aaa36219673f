"""Alert rules, their evaluation from the stream and the schedule, and the notifier queue, over the
in-memory fakes: what a building operator would notice (a page, one per crossing)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib.domain.alerts import AlertState, Transition
from chalicelib.domain.errors import NotFoundError, ValidationError
from chalicelib.domain.models import TableChange
from chalicelib.domain.notify import WebhookTarget
from chalicelib.domain.timeutil import now_ms
from chalicelib.services import alerts, registry, rollups
from tests.factories import MINUTE, T0, reading
from tests.fakes import (
    InMemoryAlertRepository,
    InMemoryDelayQueue,
    InMemoryReportRepository,
    RecordingNotifier,
    in_memory_repositories,
)

HOOK = "https://hooks.example.com/roomtemp"


@dataclass
class World:
    """Tenant t1 with building hq (rooms r101, r102), the fakes, and the consumers' steps."""

    repos: Any = field(default_factory=in_memory_repositories)
    alerts: InMemoryAlertRepository = field(default_factory=InMemoryAlertRepository)
    queue: InMemoryDelayQueue = field(default_factory=InMemoryDelayQueue)
    notifier: RecordingNotifier = field(default_factory=RecordingNotifier)
    cache: alerts.RulesCache = field(default_factory=lambda: alerts.RulesCache(60))
    policy: alerts.DeliveryPolicy = field(default_factory=lambda: alerts.DeliveryPolicy(3, 10))

    def __post_init__(self) -> None:
        for tenant in ("t1", "t2"):
            registry.create_building(
                self.repos.registry, tenant, "hq", name=None, metadata=None, now_ms=T0 - MINUTE
            )
            for room in ("r101", "r102"):
                registry.create_room(
                    self.repos.registry,
                    tenant,
                    "hq",
                    room,
                    name=None,
                    metadata=None,
                    now_ms=T0 - MINUTE,
                )

    @property
    def deps(self) -> alerts.Alerting:  # queue None: no notify queue configured
        return alerts.Alerting(self.alerts, self.repos.readings, self.queue, self.cache)

    def rule(self, room: str | None = "r101", tenant: str = "t1", **fields: Any) -> Any:
        spec = {"metric": "temperature", "condition": "above", "threshold": 26.0, "minutes": 5}
        spec.update({"notify": [{"webhook": HOOK}], **fields})
        return alerts.create_rule(
            self.alerts,
            self.repos.registry,
            tenant,
            "hq",
            room,
            spec,
            now_ms=T0 - MINUTE,
            secret="s3cret",
            allow_local=False,
        )

    def write(
        self, minute: int, temperature: float, room: str = "r101", tenant: str = "t1"
    ) -> None:
        self.repos.readings.put_readings(
            [reading(T0 + minute * MINUTE, room=room, tenant=tenant, temperature=temperature)]
        )

    def stream(self, changes: list[TableChange] | None = None) -> alerts.EvaluationOutcome:
        """One stream batch: rollups, then alerts (as api/events.table_stream). Without
        `changes`, what was written since, as live readings (written a second after taken)."""
        batch = self.live(self.repos.readings.take_changes()) if changes is None else changes
        folded = rollups.fold(self.repos.rollups, batch)
        return alerts.evaluate(self.deps, batch, skip=folded.failed_rooms)

    @staticmethod
    def live(changes: list[TableChange], late_ms: int = 1000) -> list[TableChange]:
        """The changes as written `late_ms` after their readings were taken."""
        return [
            TableChange(c.sequence, c.reading.ts_ms + late_ms if c.reading else 0, c.reading)
            for c in changes
        ]

    def notify(self, bodies: list[str] | None = None) -> None:
        """The notify queue's consumer, over what is queued now."""
        for body in self.queue.take() if bodies is None else bodies:
            alerts.deliver(
                self.alerts,
                self.notifier,
                self.queue,
                body,
                policy=self.policy,
                allow_local=False,
            )

    def events(self, tenant: str = "t1", state: AlertState | None = None) -> list[Any]:
        found, _ = alerts.list_events(
            self.alerts, tenant, state=state, buildings=None, room=None, limit=100, after=None
        )
        return found


@pytest.fixture
def world() -> World:
    return World()


def test_a_room_crossing_the_threshold_fires_once_and_notifies_once(world: World) -> None:
    world.rule()
    for minute, temperature in enumerate([24.0, 25.0, 27.0, 28.0, 29.0]):
        world.write(minute, temperature)
        world.stream()
    world.notify()
    (event,) = world.events()
    assert event.state is AlertState.ACTIVE
    # Fired at the first reading whose 5-minute average passed 26: (24+25+27+28)/4 = 26 is not
    # above it; with 29 the average is 26.6.
    assert event.fired_ms == T0 + 4 * MINUTE
    assert event.value == pytest.approx(26.6)
    (sent,) = world.notifier.delivered
    assert sent.target == WebhookTarget(HOOK)
    assert sent.secret == "s3cret"
    assert sent.event == "alert.fired"
    assert sent.json()["id"] == sent.delivery_id
    assert sent.json()["alert"]["state"] == "active"
    assert sent.json()["alert"]["room"] == "r101"


def test_the_alert_clears_once_the_average_comes_back(world: World) -> None:
    world.rule()
    world.write(0, 30.0)
    world.stream()
    for minute in range(1, 12):
        world.write(minute, 20.0)
        world.stream()
    world.notify()
    (event,) = world.events()
    assert event.state is AlertState.CLEARED
    assert event.cleared_value is not None and event.cleared_value < 26
    fired, cleared = world.notifier.delivered
    assert (fired.event, cleared.event) == ("alert.fired", "alert.cleared")
    assert fired.delivery_id != cleared.delivery_id
    assert [d.status for d in event.deliveries] == ["delivered", "delivered"]


def test_hysteresis_keeps_a_flapping_room_from_paging_again(world: World) -> None:
    world.rule(clear_threshold=24.0, minutes=1)
    for minute in range(20):  # one reading a minute, each the whole 1-minute window
        world.write(minute, 26.5 if minute % 2 == 0 else 25.0)
        world.stream()
    assert [e.state for e in world.events()] == [AlertState.ACTIVE]
    world.write(20, 23.5)
    world.stream()
    world.write(21, 26.5)
    world.stream()
    assert sorted(e.state for e in world.events()) == [AlertState.ACTIVE, AlertState.CLEARED]


def test_a_below_rule_in_fahrenheit_compares_in_the_rules_unit(world: World) -> None:
    world.rule(condition="below", threshold=60.0, unit="F", clear_threshold=64.0)  # 15.6 °C
    world.write(0, 16.0)
    world.stream()
    assert world.events() == []
    world.write(1, 14.0)
    world.write(2, 14.0)
    world.stream()
    (event,) = world.events()
    assert event.unit == "F"
    assert event.value == pytest.approx((16 + 14 + 14) / 3 * 9 / 5 + 32)


def test_a_building_rule_watches_rooms_added_later(world: World) -> None:
    world.rule(room=None)
    registry.create_room(
        world.repos.registry, "t1", "hq", "lab", name=None, metadata=None, now_ms=T0
    )
    world.write(0, 30.0, room="lab")
    world.write(0, 21.0, room="r102")
    world.stream()
    (event,) = world.events()
    assert (event.building, event.room) == ("hq", "lab")


def test_a_silent_room_fires_on_schedule_and_clears_with_its_next_reading(world: World) -> None:
    world.rule(condition="silent", threshold=None, minutes=10)
    world.write(0, 21.0)
    world.stream()
    alerts.check_silence(world.deps, world.repos.registry, T0 + 9 * MINUTE)
    assert world.events() == []
    alerts.check_silence(world.deps, world.repos.registry, T0 + 11 * MINUTE)
    alerts.check_silence(world.deps, world.repos.registry, T0 + 12 * MINUTE)
    (event,) = world.events()
    assert (event.state, event.value) == (AlertState.ACTIVE, 11.0)
    # A new reading, written now: the stream clears it.
    changes = [TableChange("9", T0 + 13 * MINUTE, reading(T0 + 13 * MINUTE))]
    world.repos.readings.put_readings([changes[0].reading])
    world.repos.readings.take_changes()
    world.stream(changes)
    assert world.events()[0].state is AlertState.CLEARED
    world.notify()
    assert [d.event for d in world.notifier.delivered] == ["alert.fired", "alert.cleared"]


def test_a_silent_room_that_never_reported_counts_from_the_rules_creation(world: World) -> None:
    world.rule(room="r102", condition="silent", threshold=None, minutes=5)
    alerts.check_silence(world.deps, world.repos.registry, T0 + 3 * MINUTE)
    assert world.events() == []
    alerts.check_silence(world.deps, world.repos.registry, T0 + 5 * MINUTE)
    assert [e.room for e in world.events()] == ["r102"]


def test_a_replayed_stream_batch_makes_one_transition_with_one_delivery_id(world: World) -> None:
    world.rule()
    world.write(0, 30.0)
    batch = world.live(world.repos.readings.take_changes())
    first = world.stream(batch)
    again = world.stream(batch)  # the stream delivers the same records again
    assert (first.transitions, again.transitions) == (1, 0)
    assert len(world.queue.bodies) == 1
    world.notify()
    assert len(world.notifier.delivered) == 1


class DownQueue(InMemoryDelayQueue):
    """A notify queue that refuses every message."""

    def send(self, bodies: Any) -> None:
        raise ConnectionError("queue down")


def test_a_failed_enqueue_is_not_retried_by_the_stream_but_by_the_next_evaluation(
    world: World,
) -> None:
    world.rule()
    world.queue = DownQueue()
    world.write(0, 30.0)
    outcome = world.stream()
    # The transition is kept and the stream is not asked to replay anything.
    assert (outcome.transitions, outcome.failed_from, outcome.failed_rooms) == (1, None, [])
    world.queue = InMemoryDelayQueue()
    world.write(1, 30.0)  # the room's next reading: still active, nothing new to decide
    world.stream()
    (body,) = world.queue.bodies
    (event,) = world.events()
    assert json.loads(body)["delivery_id"] == event.event_id  # the firing transition's id
    world.write(2, 30.0)
    world.stream()
    assert len(world.queue.bodies) == 1  # marked enqueued: not again


def test_a_failed_enqueue_of_a_room_that_reports_no_more_is_sent_by_the_schedule(
    world: World,
) -> None:
    world.rule()
    world.queue = DownQueue()
    world.write(0, 30.0)
    world.stream()
    world.queue = InMemoryDelayQueue()
    now = now_ms()
    assert alerts.enqueue_unsent(world.deps, now) == 0  # listed just now: the stream may yet
    assert alerts.enqueue_unsent(world.deps, now + 2 * MINUTE) == 1
    assert alerts.enqueue_unsent(world.deps, now + 3 * MINUTE) == 0
    world.notify()
    assert [d.event for d in world.notifier.delivered] == ["alert.fired"]


def test_without_a_notify_queue_transitions_are_kept_and_say_they_were_not_sent(
    world: World,
) -> None:
    world.rule(notify=[{"webhook": HOOK}, {"sns": "arn:aws:sns:eu-west-1:123456789012:ops"}])
    world.queue = None  # type: ignore[assignment]
    world.write(0, 30.0)
    outcome = world.stream()
    assert (outcome.transitions, outcome.failed_from) == (1, None)
    (event,) = world.events()
    assert event.state is AlertState.ACTIVE
    assert [(d.target, d.kind, d.status) for d in event.deliveries] == [
        (0, "webhook", "skipped"),
        (1, "sns", "skipped"),
    ]
    assert event.deliveries[0].last_error == alerts.NOT_CONFIGURED
    assert world.alerts.unsent_states(now_ms() + 2 * MINUTE) == []  # nothing left to send


def test_a_warm_rules_cache_reads_no_rule_and_no_state_without_rules(world: World) -> None:
    world.rule()
    world.write(0, 21.0)
    world.write(0, 21.0, room="r102")
    world.stream()
    world.write(1, 21.0)
    world.write(1, 21.0, room="r102")
    world.alerts.calls.clear()
    world.stream()
    # One read of the batch's states and one write of the room's high-water mark; rules cached.
    assert world.alerts.calls == ["states", "mark_evaluated"]


def test_a_failing_receiver_is_retried_with_growing_delays_until_it_recovers(world: World) -> None:
    world.rule()
    world.write(0, 30.0)
    world.stream()
    world.notifier.fail(2, reason="HTTP 503")
    world.notify()
    world.notify(world.queue.take_later())
    assert world.queue.later[0][1] == 20  # 10 s, then 20 s
    world.notify(world.queue.take_later())
    assert world.queue.later == []
    attempts = world.notifier.attempts
    assert len(attempts) == 3 and len({a.delivery_id for a in attempts}) == 1
    (delivery,) = world.events()[0].deliveries
    assert (delivery.status, delivery.attempts) == ("delivered", 3)


def test_a_receiver_that_keeps_failing_is_recorded_on_the_event(world: World) -> None:
    world.rule(notify=[{"webhook": HOOK}, {"webhook": "https://ok.example.com/x"}])
    world.write(0, 30.0)
    world.stream()
    world.notifier.fail(1, reason="HTTP 500")  # the first target fails every attempt...
    world.notify()
    for _ in range(5):
        world.notifier.fail(1, reason="HTTP 500")
        world.notify(world.queue.take_later())
    failed, delivered = world.events()[0].deliveries
    assert (failed.target, failed.kind, failed.host) == (0, "webhook", "hooks.example.com")
    assert (failed.status, failed.attempts) == ("failed", 3)
    assert failed.last_error == "HTTP 500"
    assert (delivered.status, delivered.attempts) == ("delivered", 1)  # ...not re-sent
    assert len([a for a in world.notifier.delivered if "ok.example" in str(a.target)]) == 1


def test_another_tenants_rule_is_not_found_and_its_events_are_not_listed(world: World) -> None:
    rule = world.rule(tenant="t2")
    world.write(0, 30.0, tenant="t2")
    world.stream()
    with pytest.raises(NotFoundError):
        alerts.owned_rule(world.alerts, "t1", rule.rule_id)
    assert world.events("t1") == []
    assert len(world.events("t2")) == 1
    world.write(0, 30.0, tenant="t1")  # same building and room ids, t1's own room: no rule
    world.stream()
    assert world.events("t1") == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"clear_threshold": 27.0}, "clear_threshold"),
        ({"condition": "below", "clear_threshold": 25.0}, "clear_threshold"),
        ({"condition": "silent"}, "threshold"),
        ({"threshold": None}, "threshold"),
        ({"metric": "co2", "unit": "F"}, "unit"),
        ({"notify": [{"webhook": "http://127.0.0.1:9/x"}]}, "notify"),
        ({"notify": [{"webhook": "https://10.0.0.8/x"}]}, "notify"),
    ],
)
def test_a_bad_rule_is_refused(world: World, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        world.rule(**fields)


def test_a_rule_on_a_missing_room_is_not_found(world: World) -> None:
    with pytest.raises(NotFoundError):
        world.rule(room="nope")


def test_deleting_the_building_deletes_its_rules_and_events(world: World) -> None:
    rule = world.rule()
    world.write(0, 30.0)
    world.stream()
    registry.delete_building(
        world.repos.registry,
        world.repos.readings,
        InMemoryReportRepository(),
        "t1",
        "hq",
        force=True,
        alerts=world.alerts,
    )
    assert world.alerts.get_rule("t1", rule.rule_id) is None
    assert world.events() == []


def test_a_deleted_rule_closes_its_active_event_quietly(world: World) -> None:
    rule = world.rule()
    world.write(0, 30.0)
    world.stream()
    alerts.delete_rule(world.alerts, "t1", rule.rule_id, now_ms=T0 + MINUTE)
    (event,) = world.events()
    assert (event.state, event.cleared_ms) == (AlertState.CLEARED, T0 + MINUTE)


def test_a_duplicated_message_sends_once_and_a_retry_sends_the_same_body(world: World) -> None:
    world.rule()
    world.write(0, 30.0)
    world.stream()
    (body,) = world.queue.take()
    world.notifier.fail(1)
    world.notify([body, body])  # the queue delivered the message twice; the first try failed
    world.notify([body])
    world.notify(world.queue.take_later())
    first, *rest = world.notifier.attempts
    assert len(rest) == 1  # the failed try and one successful one: no third send
    assert rest[0].body == first.body and rest[0].delivery_id == first.delivery_id
    assert first.event == "alert." + Transition.FIRED.value


# -- late and historical readings ---------------------------------------------------------------


def test_a_late_reading_alone_in_a_batch_neither_clears_nor_refires_an_active_alert(
    world: World,
) -> None:
    world.rule()
    for minute in range(20, 25):
        world.write(minute, 30.0)
    world.stream()
    (event,) = world.events()
    assert event.state is AlertState.ACTIVE
    # A sensor's buffered reading from before the heat arrives alone, written now (minute 25).
    late = reading(T0, temperature=18.0)
    world.repos.readings.put_readings([late])
    world.stream(world.live(world.repos.readings.take_changes(), late_ms=25 * MINUTE))
    world.write(25, 30.0)  # the next live reading
    world.stream()
    world.notify()
    assert [(e.state, e.fired_ms) for e in world.events()] == [
        (AlertState.ACTIVE, T0 + 24 * MINUTE)
    ]
    assert [d.event for d in world.notifier.delivered] == ["alert.fired"]


def test_importing_last_months_hot_history_fires_nothing(world: World) -> None:
    world.rule()
    month = 30 * 24 * 60
    for minute in range(10):
        world.write(minute - month, 35.0)
    # Written now, stamped a month ago (a bulk import): one batch.
    world.stream(world.live(world.repos.readings.take_changes(), late_ms=month * MINUTE))
    assert world.events() == []
    world.write(0, 21.0)
    world.stream()
    assert world.events() == []


def test_a_reading_a_few_minutes_late_still_counts(world: World) -> None:
    world.rule()  # a 5-minute window: readings up to 5 + 10 minutes late still decide
    for minute in range(3):
        world.write(minute, 30.0)
    world.stream(world.live(world.repos.readings.take_changes(), late_ms=12 * MINUTE))
    assert [e.state for e in world.events()] == [AlertState.ACTIVE]


def test_a_replayed_batch_after_newer_ones_decides_nothing_again(world: World) -> None:
    world.rule()
    world.write(0, 30.0)
    first = world.live(world.repos.readings.take_changes())
    world.stream(first)
    for minute in range(1, 8):
        world.write(minute, 20.0)
    world.stream()
    assert [e.state for e in world.events()] == [AlertState.CLEARED]
    assert world.stream(first).transitions == 0  # the stream hands the old batch back
    assert [e.state for e in world.events()] == [AlertState.CLEARED]


# -- rules deleted, rooms deleted, rules changed --------------------------------------------------


def test_a_rule_deleted_while_the_consumer_caches_it_fires_nothing(world: World) -> None:
    rule = world.rule()
    world.write(0, 21.0)
    world.stream()  # the consumer's cache now holds the rule
    alerts.delete_rule(world.alerts, "t1", rule.rule_id, now_ms=T0 + MINUTE)
    world.write(1, 35.0)
    world.write(2, 35.0)
    outcome = world.stream()
    assert (outcome.transitions, outcome.failed_from) == (0, None)  # dropped quietly
    assert world.events() == []


def test_deleting_a_room_removes_its_alerts_and_a_recreated_room_starts_clean(
    world: World,
) -> None:
    own = world.rule()
    everywhere = world.rule(room=None, threshold=28.0)
    world.write(0, 30.0)
    world.write(0, 30.0, room="r102")
    world.stream()
    assert len(world.events()) == 3
    registry.delete_room(
        world.repos.registry,
        world.repos.readings,
        "t1",
        "hq",
        "r101",
        force=True,
        alerts=world.alerts,
    )
    assert world.alerts.get_rule("t1", own.rule_id) is None
    assert world.alerts.get_rule("t1", everywhere.rule_id) is not None
    assert [e.room for e in world.events()] == ["r102"]
    # The same room again: no old rule, no old state, no old event.
    registry.create_room(
        world.repos.registry, "t1", "hq", "r101", name=None, metadata=None, now_ms=T0
    )
    world.cache.forget()
    world.write(1, 30.0)
    world.stream()
    fired = [e for e in world.events() if e.room == "r101"]
    assert [(e.rule_id, e.state) for e in fired] == [(everywhere.rule_id, AlertState.ACTIVE)]


def change(world: World, rule: Any, **changes: Any) -> Any:
    return alerts.update_rule(
        world.alerts, "t1", rule.rule_id, changes, allow_local=False, now_ms=T0 + 9 * MINUTE
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"unit": "F"},
        {"metric": "humidity"},
        {"condition": "below"},
        {"unit": None, "threshold": 26.0},
        {"metric": None, "threshold": 26.0},
    ],
)
def test_changing_what_a_rule_means_needs_its_thresholds_and_null_is_no_unit(
    world: World, changes: dict[str, Any]
) -> None:
    rule = world.rule()
    with pytest.raises(ValidationError):
        change(world, rule, **changes)
    assert world.alerts.get_rule("t1", rule.rule_id) == rule


def test_changing_a_rules_unit_starts_it_over_and_closes_its_active_event(world: World) -> None:
    rule = world.rule()
    world.write(0, 30.0)
    world.stream()
    changed = change(world, rule, unit="F", threshold=85.0)  # 29.4 °C
    assert (changed.unit, changed.threshold) == ("F", 85.0)
    (closed,) = world.events()
    assert (closed.state, closed.cleared_by) == (AlertState.CLEARED, "rule changed")
    world.cache.forget()  # as the API does after a change
    world.write(1, 30.0)
    world.stream()
    opened = [e for e in world.events() if e.state is AlertState.ACTIVE]
    assert [(e.unit, e.threshold) for e in opened] == [("F", 85.0)]


def test_a_threshold_change_keeps_the_active_alert(world: World) -> None:
    rule = world.rule()
    world.write(0, 30.0)
    world.stream()
    change(world, rule, threshold=27.0, unit="C")  # the same unit: the same meaning
    assert [e.state for e in world.events()] == [AlertState.ACTIVE]


# -- the silence check, the notify budget ---------------------------------------------------------


def test_the_silence_check_reads_every_tenants_silent_rules_in_one_call(world: World) -> None:
    for tenant in ("t1", "t2"):
        world.rule(tenant=tenant, condition="silent", threshold=None, minutes=5)
    world.alerts.calls.clear()
    alerts.check_silence(world.deps, world.repos.registry, T0 + 10 * MINUTE)
    assert world.alerts.calls.count("silent_rules") == 1
    assert sorted(e.room for t in ("t1", "t2") for e in world.events(t)) == ["r101", "r101"]


def test_a_notify_run_out_of_time_hands_the_rest_back_without_counting_an_attempt(
    world: World,
) -> None:
    world.rule(notify=[{"webhook": HOOK}, {"webhook": "https://ok.example.com/x"}])
    world.write(0, 30.0)
    world.stream()
    (body,) = world.queue.take()
    clock = iter([60.0, 60.0, 12.0])  # enough for the first target, not the second

    def deliver(message: str, time_left: Any) -> None:
        alerts.deliver(
            world.alerts,
            world.notifier,
            world.queue,
            message,
            policy=world.policy,
            allow_local=False,
            time_left=time_left,
            needed_s=15.0,
        )

    deliver(body, lambda: next(clock))
    assert len(world.notifier.attempts) == 1
    ((again, delay),) = world.queue.later
    assert (json.loads(again)["attempt"], delay) == (1, 0)  # the same attempt, at once
    world.queue.take_later()
    deliver(again, lambda: 60.0)
    assert [str(a.target) for a in world.notifier.attempts] == [
        str(WebhookTarget(HOOK)),
        str(WebhookTarget("https://ok.example.com/x")),
    ]  # each target once
    assert [(d.target, d.status, d.attempts) for d in world.events()[0].deliveries] == [
        (0, "delivered", 1),
        (1, "delivered", 1),
    ]
    deliver(body, lambda: 3.0)  # no time at all: handed back before any work
    assert len(world.notifier.attempts) == 2 and len(world.queue.later) == 1
