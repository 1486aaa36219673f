"""Alert use cases: rules (CRUD), their evaluation from the table's stream and on a schedule
(silent rooms), alert events, and the notify queue's deliveries. No Chalice, no boto3.

Evaluation never scans: the stream consumer reads the rules of the buildings of the rooms in its
batch (one Query each, cached for a short TTL), the states of those (rule, room) pairs (one
BatchGetItem per building), and one window of readings per room with threshold rules. A
transition is one conditional write (state + event): its id is a hash of (rule, room, transition
number), so a replayed batch computes the same transition, the write refuses it, and the
notification (same delivery id) is enqueued at least once, never as two different alerts.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from chalicelib import observability
from chalicelib.domain.alerts import (
    CLOSED_BY_RULE_CHANGE,
    LATE_SLACK_MINUTES,
    MAX_MINUTES,
    MAX_RULES_PER_BUILDING,
    MAX_TARGETS,
    MINUTE_MS,
    AlertEvent,
    AlertRule,
    AlertState,
    Condition,
    Delivery,
    RoomState,
    Transition,
    decide,
    notification_body,
    silence_transition,
)
from chalicelib.domain.errors import NotFoundError, ValidationError
from chalicelib.domain.inputs import describe_errors
from chalicelib.domain.models import Metric, Reading, TableChange, earliest_sequence
from chalicelib.domain.notify import DeliveryError, parse_target, target_json, target_summary
from chalicelib.domain.units import TemperatureUnit
from chalicelib.ports import (
    AlertRepository,
    DelayQueue,
    MessageQueue,
    Notifier,
    ReadingRepository,
    RegistryRepository,
)
from chalicelib.services import registry as registry_service

Place = tuple[str, str, str]  # tenant, building, room
NOT_CONFIGURED = "not sent: no notify queue is configured in this stage"
RULE_FIELDS = ("metric", "condition", "threshold", "unit", "minutes", "clear_threshold", "notify")


# -- rules ------------------------------------------------------------------------------------


def new_rule_id() -> str:
    """A fresh rule id (an identifier: it pages like the other lists)."""
    return "ar" + secrets.token_hex(8)


def check_rule(rule: AlertRule, *, allow_local: bool) -> AlertRule:
    """The rule with its targets in canonical form; ValidationError (422) for what breaks a rule."""
    if not 1 <= rule.minutes <= MAX_MINUTES:
        raise ValidationError(f"minutes: between 1 and {MAX_MINUTES}")
    if rule.condition is Condition.SILENT:
        if rule.threshold is not None or rule.clear_threshold is not None:
            raise ValidationError("threshold: not for a silent rule (minutes: without readings)")
        if rule.unit is not None:
            raise ValidationError("unit: not for a silent rule")
    else:
        if rule.threshold is None:
            raise ValidationError(f"threshold: required for an {rule.condition.value} rule")
        for name in ("threshold", "clear_threshold"):
            value = getattr(rule, name)
            if value is not None and not math.isfinite(value):
                raise ValidationError(f"{name}: must be a finite number")
        if rule.metric is not Metric.TEMPERATURE and rule.unit is not None:
            raise ValidationError("unit: only for temperature rules")
        if rule.clear_threshold is not None:
            if rule.condition is Condition.ABOVE and rule.clear_threshold > rule.threshold:
                raise ValidationError("clear_threshold: must be <= threshold for an above rule")
            if rule.condition is Condition.BELOW and rule.clear_threshold < rule.threshold:
                raise ValidationError("clear_threshold: must be >= threshold for a below rule")
    if len(rule.notify) > MAX_TARGETS:
        raise ValidationError(f"notify: at most {MAX_TARGETS} targets")
    targets = []
    for raw in rule.notify:
        try:
            targets.append(target_json(parse_target(raw, allow_local=allow_local)))
        except ValidationError as exc:
            raise ValidationError(f"notify: {exc.message}") from None
    unit = rule.unit
    if rule.metric is Metric.TEMPERATURE and rule.condition is not Condition.SILENT:
        unit = unit or TemperatureUnit.C
    return rule.model_copy(update={"notify": targets, "unit": unit})


def create_rule(
    alerts: AlertRepository,
    registry: RegistryRepository,
    tenant: str,
    building: str,
    room: str | None,
    fields: Mapping[str, Any],
    *,
    now_ms: int,
    secret: str,
    allow_local: bool,
    rule_id: str | None = None,
) -> AlertRule:
    """Create a rule on a room, or on every room of a building (room None; rooms added later
    included). 404 for a building or room that is not the tenant's; 422 for a bad rule."""
    if room is None:
        registry_service.owned_building(registry, tenant, building)
    else:
        registry_service.owned_room(registry, tenant, building, room)
    rule = check_rule(
        _rule_of(
            {
                "rule_id": rule_id or new_rule_id(),
                "tenant": tenant,
                "building": building,
                "room": room,
                "name": str(fields.get("name") or ""),
                "secret": secret,
                "created_ms": now_ms,
                **{name: fields[name] for name in RULE_FIELDS if fields.get(name) is not None},
            }
        ),
        allow_local=allow_local,
    )
    if not rule.name:
        rule = rule.model_copy(update={"name": f"{rule.metric.value} {rule.condition.value}"})
    if len(alerts.rules_of_building(tenant, building)) >= MAX_RULES_PER_BUILDING:
        raise ValidationError(f"a building holds at most {MAX_RULES_PER_BUILDING} alert rules")
    alerts.create_rule(rule)
    return rule


def _rule_of(fields: Mapping[str, Any]) -> AlertRule:
    try:
        return AlertRule.model_validate(fields)
    except PydanticValidationError as exc:
        raise ValidationError(describe_errors(exc)) from None


def owned_rule(alerts: AlertRepository, tenant: str, rule_id: str) -> AlertRule:
    """The tenant's rule; 404 when it does not exist or is another tenant's."""
    found = alerts.get_rule(tenant, rule_id)
    if found is None or found.tenant != tenant:
        raise NotFoundError(f"alert rule {rule_id} does not exist")
    return found


MEANING = ("metric", "condition", "unit")  # a change of these makes it another rule


def update_rule(
    alerts: AlertRepository,
    tenant: str,
    rule_id: str,
    changes: Mapping[str, Any],
    *,
    allow_local: bool,
    now_ms: int,
    reachable: Callable[[str], bool] = lambda _: True,
) -> AlertRule:
    """Change a rule's name, threshold, window, targets...; its place and secret stay.

    A change of metric, condition or unit must bring its thresholds (a 26 °C threshold is no
    26 °F one), and starts the rule over: its states are reset and its active events closed
    (`cleared_by` "rule changed"), so no event opened under the old meaning is cleared under the
    new one. 422 for `unit: null` (not a unit)."""
    found = owned_rule(alerts, tenant, rule_id)
    if not reachable(found.building):
        raise NotFoundError(f"alert rule {rule_id} does not exist")
    for name in ("metric", "condition"):
        if name in changes and changes[name] is None:
            raise ValidationError(f"{name}: may not be null")
    if "unit" in changes and changes["unit"] is None:
        raise ValidationError("unit: may not be null (give C, F or K)")
    current = found.model_dump(mode="json")
    moved = [n for n in MEANING if n in changes and changes[n] != current[n]]
    condition = changes.get("condition", current["condition"])
    if moved and condition != Condition.SILENT.value and "threshold" not in changes:
        raise ValidationError(
            f"threshold: required when {', '.join(moved)} changes (in the rule's new terms)"
        )
    merged = found.model_dump()
    merged.update(changes)
    if "metric" in changes and "unit" not in changes:
        merged["unit"] = None
    if moved and "clear_threshold" not in changes:
        merged["clear_threshold"] = None  # the old bound is in the old terms
    if condition == Condition.SILENT.value:
        merged.update(threshold=None, clear_threshold=None, unit=None)
    if moved:
        merged["revision"] = found.revision + 1
    updated = check_rule(_rule_of(merged), allow_local=allow_local)
    if moved:
        alerts.reset_states(found, now_ms, CLOSED_BY_RULE_CHANGE)
    alerts.save_rule(updated)
    return updated


def delete_rule(
    alerts: AlertRepository,
    tenant: str,
    rule_id: str,
    *,
    now_ms: int,
    reachable: Callable[[str], bool] = lambda _: True,
) -> None:
    """Delete a rule; its events stay (active ones are closed, without a notification)."""
    found = owned_rule(alerts, tenant, rule_id)
    if not reachable(found.building):
        raise NotFoundError(f"alert rule {rule_id} does not exist")
    alerts.delete_rule(found, now_ms)


def list_rules(
    alerts: AlertRepository,
    registry: RegistryRepository,
    tenant: str,
    building: str,
    room: str | None,
    limit: int,
    after: str | None,
) -> tuple[list[AlertRule], str | None]:
    """The rules of a building (room None), or those that watch one room, by id."""
    if room is None:
        registry_service.owned_building(registry, tenant, building)
    else:
        registry_service.owned_room(registry, tenant, building, room)
    rules = sorted(
        (
            r
            for r in alerts.rules_of_building(tenant, building)
            if room is None or r.applies_to(room)
        ),
        key=lambda r: r.rule_id,
    )
    if after is not None:
        rules = [r for r in rules if r.rule_id > after]
    page = rules[:limit]
    return page, (page[-1].rule_id if len(rules) > limit else None)


# -- the rules cache --------------------------------------------------------------------------


class RulesCache:
    """The rules of recently seen buildings, per process, for `ttl_s`: a warm stream consumer
    reads no rule at all. A changed rule takes effect within the TTL."""

    def __init__(self, ttl_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._rules: dict[tuple[str, str], tuple[float, list[AlertRule]]] = {}

    def rules(
        self, tenant: str, building: str, load: Callable[[], list[AlertRule]]
    ) -> list[AlertRule]:
        """The building's rules, from the cache while fresh, else from `load`."""
        key = (tenant, building)
        now = self._clock()
        cached = self._rules.get(key)
        if cached is not None and now - cached[0] <= self.ttl_s:
            return cached[1]
        rules = load()
        if self.ttl_s > 0:
            if len(self._rules) > 10_000:
                self._rules.clear()
            self._rules[key] = (now, rules)
        return rules

    def forget(self, tenant: str | None = None, building: str | None = None) -> None:
        """Forget one building's rules (or everything)."""
        if tenant is None:
            self._rules.clear()
        else:
            self._rules.pop((tenant, building or ""), None)


# -- transitions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alerting:
    """What evaluating alerts needs."""

    alerts: AlertRepository
    readings: ReadingRepository
    queue: MessageQueue | None  # the notify queue; None: not configured (nothing is sent)
    cache: RulesCache


@dataclass(slots=True)
class EvaluationOutcome:
    """What one stream batch (or schedule run) did to alerts."""

    rooms: int = 0
    transitions: int = 0
    enqueued: int = 0
    failed_from: str | None = None
    failed_rooms: list[Place] = field(default_factory=list)


def _message(rule: AlertRule, state: RoomState) -> str:
    number = state.transitions
    return json.dumps(
        {
            "tenant": rule.tenant,
            "building": rule.building,
            "rule_id": state.rule_id,
            "room": state.room,
            "event_id": state.event_id,
            "delivery_id": rule.transition_id(state.room, number),
            "transition": (Transition.FIRED if number % 2 else Transition.CLEARED).value,
            "attempt": 1,
        },
        separators=(",", ":"),
    )


def _enqueue(deps: Alerting, rule: AlertRule, state: RoomState) -> int:
    """Put the state's last transition on the notify queue (again, if an evaluation finds it not
    marked): at least once, with the same delivery id. A queue that fails leaves the state
    unmarked for the next evaluation or the minute's schedule (never a stream retry); without a
    notify queue configured the transition is kept and the event says it was not sent."""
    if state.enqueued >= state.transitions or state.event_id is None:
        return 0
    tenant, building = rule.tenant, rule.building
    marked = state.model_copy(update={"enqueued": state.transitions})
    try:
        if deps.queue is None:
            _record_not_sent(deps.alerts, rule, state)
            deps.alerts.mark_enqueued(tenant, building, marked)
            return 0
        deps.queue.send([_message(rule, state)])
        deps.alerts.mark_enqueued(tenant, building, marked)
    except Exception as exc:  # retried from the state, never by replaying the stream
        observability.logger().warning(
            "alert notification not enqueued",
            tenant=tenant,
            building=building,
            room=state.room,
            rule_id=state.rule_id,
            error=repr(exc)[:300],
        )
        return 0
    return 1


def _record_not_sent(alerts: AlertRepository, rule: AlertRule, state: RoomState) -> None:
    delivery_id = rule.transition_id(state.room, state.transitions)
    transition = Transition.FIRED if state.transitions % 2 else Transition.CLEARED
    for index, raw in enumerate(rule.notify):
        kind, host, ref = target_summary(raw)
        alerts.record_delivery(
            rule.tenant,
            rule.building,
            str(state.event_id),
            index,
            Delivery(
                delivery_id=delivery_id,
                transition=transition,
                target=index,
                kind=kind,
                host=host,
                ref=ref,
                status="skipped",
                attempts=0,
                last_error=NOT_CONFIGURED,
            ),
        )


def apply_transition(
    deps: Alerting,
    rule: AlertRule,
    room: str,
    state: RoomState,
    transition: Transition,
    *,
    value: float | None,
    at_ms: int,
) -> RoomState | None:
    """Write the transition (conditional on `state`) and enqueue its notification; the new
    state, or None when another worker (or an earlier delivery of this batch) made it first."""
    tenant, building = rule.tenant, rule.building
    number = state.transitions + 1
    step_id = rule.transition_id(room, number)
    # A threshold rule's transition ends the window at `at_ms`: its high-water mark moves too.
    mark = (
        state.evaluated_ms if rule.condition is Condition.SILENT else max(state.evaluated_ms, at_ms)
    )
    if transition is Transition.FIRED:
        event = AlertEvent(
            event_id=step_id,
            tenant=tenant,
            rule_id=rule.rule_id,
            name=rule.name,
            metric=rule.metric,
            condition=rule.condition,
            building=building,
            room=room,
            state=AlertState.ACTIVE,
            value=value,
            threshold=rule.threshold,
            unit=rule.unit.value if rule.unit is not None else None,
            fired_ms=at_ms,
        )
        after = RoomState(
            rule_id=rule.rule_id,
            room=room,
            transitions=number,
            enqueued=state.enqueued,
            event_id=step_id,
            evaluated_ms=mark,
        )
    else:
        opened = (
            None
            if state.event_id is None
            else deps.alerts.get_event(tenant, building, state.event_id)
        )
        if opened is None:  # the event is gone (a purge raced): start over cleanly
            return None
        event = opened.model_copy(
            update={"state": AlertState.CLEARED, "cleared_ms": at_ms, "cleared_value": value}
        )
        after = state.model_copy(update={"transitions": number, "evaluated_ms": mark})
    if not deps.alerts.transition(tenant, building, state, after, event):
        # Another worker made it first, or the rule was deleted meanwhile (a warm rules cache):
        # nothing to do, and nothing for the stream to retry.
        return None
    observability.logger().info(
        "alert transition",
        tenant=tenant,
        building=building,
        room=room,
        rule_id=rule.rule_id,
        transition=transition.value,
        transition_id=step_id,
    )
    return after


def _average(readings: Iterable[Reading], metric: Metric, after_ms: int) -> float | None:
    values = [v for r in readings if r.ts_ms > after_ms and (v := r.value(metric)) is not None]
    return math.fsum(values) / len(values) if values else None


def evaluate(
    deps: Alerting, changes: Sequence[TableChange], *, skip: Iterable[Place] = ()
) -> EvaluationOutcome:
    """Evaluate the rules of every room with new readings in a stream batch (rooms in `skip`
    are delivered again anyway). The window ends at the room's newest reading of the batch, not
    at the clock, so a replayed batch decides the same."""
    outcome = EvaluationOutcome()
    skipped = set(skip)
    rooms: dict[Place, list[TableChange]] = {}
    for change in changes:
        r = change.reading
        if r is not None and (r.tenant, r.building, r.room) not in skipped:
            rooms.setdefault((r.tenant, r.building, r.room), []).append(change)
    buildings: dict[tuple[str, str], list[str]] = {}
    for tenant, building, room in rooms:
        buildings.setdefault((tenant, building), []).append(room)

    def failed(place: Place, exc: Exception) -> None:
        observability.logger().warning(
            "alert evaluation failed",
            tenant=place[0],
            building=place[1],
            room=place[2],
            error=repr(exc)[:300],
        )
        outcome.failed_rooms.append(place)
        first = rooms[place][0].sequence
        outcome.failed_from = earliest_sequence(outcome.failed_from, first)

    for (tenant, building), names in buildings.items():
        try:
            rules = deps.cache.rules(tenant, building, _loader(deps.alerts, tenant, building))
            pairs = [(r.rule_id, room) for room in names for r in rules if r.applies_to(room)]
            states = deps.alerts.states(tenant, building, pairs) if pairs else {}
        except Exception as exc:  # every room of the building comes again
            for room in names:
                failed((tenant, building, room), exc)
            continue
        for room in names:
            watching = [r for r in rules if r.applies_to(room)]
            if not watching:
                continue
            try:
                _evaluate_room(
                    deps, outcome, watching, room, rooms[(tenant, building, room)], states
                )
            except Exception as exc:
                failed((tenant, building, room), exc)
                continue
            outcome.rooms += 1
    return outcome


def _evaluate_room(
    deps: Alerting,
    outcome: EvaluationOutcome,
    rules: list[AlertRule],
    room: str,
    changes: list[TableChange],
    states: Mapping[tuple[str, str], RoomState],
) -> None:
    tenant, building = rules[0].tenant, rules[0].building
    newest = max(c.reading.ts_ms for c in changes if c.reading is not None)
    written = max(c.written_ms for c in changes)
    current: dict[str, RoomState] = {}
    due: list[AlertRule] = []  # the threshold rules this batch moves forward
    for rule in rules:
        state = states.get((rule.rule_id, room)) or RoomState(rule_id=rule.rule_id, room=room)
        current[rule.rule_id] = state
        outcome.enqueued += _enqueue(deps, rule, state)
        if rule.condition is Condition.SILENT:
            continue
        # Only a window ending after the last one evaluated (a replay, a late reading: no), and
        # only about now: not a month-old import, not a reading long late (written vs stamped).
        late = written - newest > (rule.minutes + LATE_SLACK_MINUTES) * MINUTE_MS
        if newest > state.evaluated_ms and not late:
            due.append(rule)
    window: list[Reading] = []
    if due:
        longest = max(r.minutes for r in due) * MINUTE_MS
        window = deps.readings.window(tenant, building, room, newest - longest, newest)
    marks: list[RoomState] = []
    for rule in rules:
        state = current[rule.rule_id]
        value: float | None
        if rule.condition is Condition.SILENT:
            # A reading written now, stamped within the window, ends the silence.
            transition = (
                Transition.CLEARED
                if state.active and written - newest < rule.minutes * MINUTE_MS
                else None
            )
            value = None
        elif any(r.rule_id == rule.rule_id for r in due):
            average = _average(window, rule.metric, newest - rule.minutes * MINUTE_MS)
            transition = decide(rule, state.active, average)
            value = None if average is None else rule.shown(average)
            if transition is None:
                marks.append(state.model_copy(update={"evaluated_ms": newest}))
        else:
            continue
        if transition is None:
            continue
        after = apply_transition(deps, rule, room, state, transition, value=value, at_ms=newest)
        if after is not None:
            outcome.transitions += 1
            outcome.enqueued += _enqueue(deps, rule, after)
    if marks:
        deps.alerts.mark_evaluated(tenant, building, marks)


def _loader(alerts: AlertRepository, tenant: str, building: str) -> Callable[[], list[AlertRule]]:
    return lambda: alerts.rules_of_building(tenant, building)


# -- silent rooms (the schedule) --------------------------------------------------------------


def check_silence(deps: Alerting, registry: RegistryRepository, now_ms: int) -> EvaluationOutcome:
    """Fire the silent rules of rooms without a reading for their `minutes` (and clear those
    that have one again). Every tenant's silent rules come from one small sharded index list:
    a few Queries a minute, however many tenants there are; no scan."""
    outcome = EvaluationOutcome()
    by_building: dict[tuple[str, str], list[AlertRule]] = {}
    for rule in deps.alerts.silent_rules():
        by_building.setdefault((rule.tenant, rule.building), []).append(rule)
    for (tenant, building), rules in sorted(by_building.items()):
        try:
            _check_building_silence(deps, registry, outcome, tenant, building, rules, now_ms)
        except Exception as exc:  # the next run tries again
            observability.logger().warning(
                "silence check failed", tenant=tenant, building=building, error=repr(exc)[:300]
            )
    return outcome


def _check_building_silence(
    deps: Alerting,
    registry: RegistryRepository,
    outcome: EvaluationOutcome,
    tenant: str,
    building: str,
    rules: list[AlertRule],
    now_ms: int,
) -> None:
    rooms: dict[str, int] = {}  # room -> created
    if any(r.room is None for r in rules):
        rooms = {
            r.room: r.created_ms for r in registry_service.all_rooms(registry, tenant, building)
        }
    for rule in rules:
        if rule.room is not None and rule.room not in rooms:
            found = registry.get_room(tenant, building, rule.room)
            if found is not None:
                rooms[rule.room] = found.created_ms
    pairs = [(r.rule_id, room) for r in rules for room in rooms if r.applies_to(room)]
    states = deps.alerts.states(tenant, building, pairs)
    latest: dict[str, int | None] = {}
    for rule_id, room in pairs:
        rule = next(r for r in rules if r.rule_id == rule_id)
        state = states.get((rule_id, room)) or RoomState(rule_id=rule_id, room=room)
        outcome.enqueued += _enqueue(deps, rule, state)
        if room not in latest:
            reading = deps.readings.latest(tenant, building, room)
            latest[room] = None if reading is None else reading.ts_ms
        since = max(rule.created_ms, rooms[room])
        transition = silence_transition(rule, state.active, latest[room], since, now_ms)
        if transition is None:
            continue
        last = latest[room]
        quiet = last if last is not None else since
        value = round((now_ms - quiet) / MINUTE_MS, 1) if transition is Transition.FIRED else None
        after = apply_transition(deps, rule, room, state, transition, value=value, at_ms=now_ms)
        if after is not None:
            outcome.transitions += 1
            outcome.enqueued += _enqueue(deps, rule, after)
        outcome.rooms += 1


def enqueue_unsent(deps: Alerting, now_ms: int) -> int:
    """Enqueue the notifications of transitions whose enqueue failed (the notify queue was
    down) a minute ago or more: the minute's schedule, so a room that reports no more is
    still notified."""
    sent = 0
    for rule, state in deps.alerts.unsent_states(now_ms - MINUTE_MS):
        sent += _enqueue(deps, rule, state)
    return sent


# -- the notify queue -------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryPolicy:
    """How often a notification is tried, and how long the queue waits between attempts."""

    max_attempts: int = 6
    base_delay_s: float = 10.0
    max_delay_s: int = 900  # SQS's DelaySeconds cap

    def delay_s(self, attempt: int) -> int:
        """The wait before attempt `attempt + 1`: doubling, capped."""
        return int(min(self.max_delay_s, max(1.0, self.base_delay_s * 2 ** (attempt - 1))))


def deliver(
    alerts: AlertRepository,
    notifier: Notifier,
    queue: DelayQueue,
    message: str,
    *,
    policy: DeliveryPolicy,
    allow_local: bool,
    time_left: Callable[[], float] | None = None,
    needed_s: float = 0.0,
) -> int:
    """Send one queued notification to every target of its rule not yet done for its delivery id;
    a target that fails retryably is tried again later (the message re-sent with a delay) until
    the attempt budget is spent, then its failure is kept on the event. When `time_left()` (the
    invocation's seconds) drops below `needed_s` (one delivery's deadline and a reserve), what is
    left is re-sent as it is, its attempt not counted. How many were sent now."""
    try:
        body = json.loads(message)
        tenant, building = str(body["tenant"]), str(body["building"])
        event_id, delivery_id = str(body["event_id"]), str(body["delivery_id"])
        transition = Transition(body["transition"])
        attempt = int(body.get("attempt", 1))
        rule_id = str(body["rule_id"])
    except (ValueError, KeyError, TypeError):
        observability.logger().warning("dropping a malformed notify message")
        return 0

    def short() -> bool:
        return time_left is not None and time_left() < needed_s

    if short():  # not even started: the next invocation takes it, attempt not counted
        queue.send_later(message, 0)
        return 0
    event = alerts.get_event(tenant, building, event_id)
    if event is None:  # the building (and its alerts) was deleted meanwhile
        return 0
    rule = next(
        (r for r in alerts.rules_of_building(tenant, building) if r.rule_id == rule_id), None
    )
    if rule is None:
        observability.logger().info("rule deleted before its notification", rule_id=rule_id)
        return 0
    done = {
        (d.target, d.ref)
        for d in event.deliveries
        if d.delivery_id == delivery_id and d.status in ("delivered", "failed")
    }
    payload = notification_body(event, delivery_id, transition)
    retry = postponed = False
    sent = 0
    for index, raw in enumerate(rule.notify):
        kind, host, ref = target_summary(raw)
        if (index, ref) in done:
            continue
        if short():
            postponed = True
            break
        error: str | None
        try:
            target = parse_target(raw, allow_local=allow_local)
            notifier.deliver(
                target,
                payload,
                secret=rule.secret,
                delivery_id=delivery_id,
                event=f"alert.{transition.value}",
                tenant=tenant,
            )
        except DeliveryError as exc:
            final = not exc.retryable or attempt >= policy.max_attempts
            retry = retry or not final
            status, error = ("failed" if final else "pending"), exc.reason[:300]
        except ValidationError as exc:  # a target a later rule of the stage no longer allows
            status, error = "failed", exc.message[:300]
        else:
            status, error = "delivered", None
            sent += 1
        alerts.record_delivery(
            tenant,
            building,
            event_id,
            index,
            Delivery(
                delivery_id=delivery_id,
                transition=transition,
                target=index,
                kind=kind,
                host=host,
                ref=ref,
                status=status,
                attempts=attempt,
                last_error=error,
            ),
        )
    if retry:  # the failed targets (and any left untried) after the backoff
        again = dict(body, attempt=attempt + 1)
        queue.send_later(json.dumps(again, separators=(",", ":")), policy.delay_s(attempt))
    elif postponed:  # out of time: the untried targets in the next invocation
        queue.send_later(message, 0)
    return sent


# -- events -----------------------------------------------------------------------------------


def list_events(
    alerts: AlertRepository,
    tenant: str,
    *,
    state: AlertState | None,
    buildings: Sequence[str] | None,
    room: str | None,
    limit: int,
    after: str | None,
) -> tuple[list[AlertEvent], str | None]:
    """The tenant's alert events (of these buildings; None: all): active first, then cleared
    (or one state), by building, room and firing time."""
    states = [state.value] if state is not None else [s.value for s in AlertState]
    return alerts.list_events(tenant, states, buildings, room, limit, after)
