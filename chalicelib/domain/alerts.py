"""Alerts: rules on a room's (or every room of a building's) windowed average, their per-room
state, the events a crossing opens and closes, and the ids that make a transition happen once.

Pure: no storage here. Thresholds are kept as the rule's author gave them (with `unit` for
temperature) and compared in °C; readings are stored in °C.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.models import Metric
from chalicelib.domain.units import TemperatureUnit, from_celsius, to_celsius

MINUTE_MS = 60_000
MAX_MINUTES = 1440  # a day: the window is one Query of the room's readings
MAX_TARGETS = 5
MAX_RULES_PER_BUILDING = 200  # the rules of a building are read in one Query (and cached)
# A window ending longer than `minutes` + this before the reading was written (a late reading,
# an imported history) fires and clears nothing: alerts are about now (docs/alerts.md).
LATE_SLACK_MINUTES = 10


# Why an active event was closed without its room coming back (AlertEvent.cleared_by).
CLOSED_BY_RULE_DELETE = "rule deleted"
CLOSED_BY_RULE_CHANGE = "rule changed"


class Condition(StrEnum):
    """When a rule fires: the average above or below its threshold, or no reading at all."""

    ABOVE = "above"
    BELOW = "below"
    SILENT = "silent"


class AlertState(StrEnum):
    """An alert event is active until its room comes back past the clear bound."""

    ACTIVE = "active"
    CLEARED = "cleared"


class Transition(StrEnum):
    """What a notification announces."""

    FIRED = "fired"
    CLEARED = "cleared"


class AlertRule(BaseModel):
    """A rule of one room, or of every room of a building (room None), rooms added later too."""

    model_config = ConfigDict(frozen=True)

    rule_id: str
    tenant: str
    building: str
    room: str | None
    metric: Metric
    condition: Condition
    threshold: float | None = None  # in `unit` for temperature; None for silent rules
    clear_threshold: float | None = None  # explicit hysteresis bound, in `unit`; None: threshold
    unit: TemperatureUnit | None = None  # temperature rules only
    minutes: int = 15
    notify: list[dict[str, Any]] = []  # the targets, as notify.target_json gives them
    name: str
    secret: str  # signs the webhooks; shown once, at creation
    created_ms: int
    revision: int = 0  # +1 when its metric, condition or unit changes: it starts over

    def transition_id(self, room: str, number: int) -> str:
        """The stable id of the rule's `number`th transition in `room` (of this revision)."""
        return transition_id(
            self.tenant, self.rule_id, self.building, room, number, revision=self.revision
        )

    def applies_to(self, room: str) -> bool:
        """Whether the rule watches `room` of its building."""
        return self.room is None or self.room == room

    def _celsius(self, value: float) -> float:
        if self.metric is Metric.TEMPERATURE and self.unit is not None:
            return to_celsius(value, self.unit)
        return value

    def fire_bound(self) -> float:
        """The threshold in stored units (°C for temperature)."""
        assert self.threshold is not None
        return self._celsius(self.threshold)

    def clear_bound(self) -> float:
        """The bound the average must come back past to clear, in stored units."""
        bound = self.clear_threshold if self.clear_threshold is not None else self.threshold
        assert bound is not None
        return self._celsius(bound)

    def shown(self, stored_value: float) -> float:
        """A stored value (°C for temperature) in the rule's unit."""
        if self.metric is Metric.TEMPERATURE and self.unit is not None:
            return round(from_celsius(stored_value, self.unit), 6)
        return round(stored_value, 6)


class RoomState(BaseModel):
    """Where one (rule, room) stands: transitions made so far (odd: an event is active), the
    last one whose notification was enqueued, the event the last firing opened, and the end of
    the last window evaluated (its high-water mark: an older reading decides nothing)."""

    model_config = ConfigDict(frozen=True)

    rule_id: str
    room: str
    transitions: int = 0
    enqueued: int = 0
    event_id: str | None = None
    evaluated_ms: int = 0

    @property
    def active(self) -> bool:
        """Whether the room's alert of this rule is active."""
        return self.transitions % 2 == 1


class Delivery(BaseModel):
    """One notification of one transition to one target, as the notifier left it. The target is
    shown by its index in the rule, its kind and its host only: a URL may carry a token."""

    model_config = ConfigDict(frozen=True)

    delivery_id: str
    transition: Transition
    target: int  # the target's index in the rule's `notify`
    kind: str  # webhook | sns
    host: str  # the webhook's host, or the SNS endpoint of the topic's region
    ref: str = ""  # a hash of the whole target: a retry skips it only if it is still the same
    status: str  # pending | delivered | failed | skipped
    attempts: int
    last_error: str | None = None


class AlertEvent(BaseModel):
    """An alert of one rule in one room: opened by a firing transition, closed by a clearing."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    tenant: str
    rule_id: str
    name: str
    metric: Metric
    condition: Condition
    building: str
    room: str
    state: AlertState
    value: float | None  # the average that fired it (in the rule's unit); silent: minutes
    threshold: float | None
    unit: str | None
    fired_ms: int
    cleared_ms: int | None = None
    cleared_value: float | None = None
    cleared_by: str | None = None  # None: the room came back; else why it was closed
    deliveries: tuple[Delivery, ...] = ()


def transition_id(
    tenant: str, rule_id: str, building: str, room: str, number: int, *, revision: int = 0
) -> str:
    """The stable id of the `number`th transition of a (rule, room): a replay computes it again,
    so receivers can drop a second delivery of one crossing by this id. A rule changed into
    another (`revision`) counts its transitions afresh, under other ids."""
    text = f"{tenant}\x1f{rule_id}\x1f{building}\x1f{room}\x1f{number}"
    if revision:
        text += f"\x1f{revision}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def decide(rule: AlertRule, active: bool, average: float | None) -> Transition | None:
    """The transition a threshold rule makes for this windowed average (stored units), if any.

    `above` fires when average > threshold and clears when average < clear bound (<= threshold);
    `below` mirrors it. Between the two bounds nothing changes: a flapping sensor pages once.
    """
    if average is None or rule.condition is Condition.SILENT:
        return None
    if rule.condition is Condition.ABOVE:
        if not active and average > rule.fire_bound():
            return Transition.FIRED
        if active and average < rule.clear_bound():
            return Transition.CLEARED
        return None
    if not active and average < rule.fire_bound():
        return Transition.FIRED
    if active and average > rule.clear_bound():
        return Transition.CLEARED
    return None


def silence_transition(
    rule: AlertRule, active: bool, last_ms: int | None, since_ms: int, now_ms: int
) -> Transition | None:
    """A silent rule's transition: fired once the room had no reading for `minutes` (counted
    from `since_ms`, the later of rule and room creation, when it never had one); cleared by a
    reading within the window."""
    quiet_since = last_ms if last_ms is not None else since_ms
    silent = now_ms - quiet_since >= rule.minutes * MINUTE_MS
    if silent and not active:
        return Transition.FIRED
    if active and not silent:
        return Transition.CLEARED
    return None


def notification_body(event: AlertEvent, delivery_id: str, transition: Transition) -> bytes:
    """The JSON every target of the transition receives (webhook body, SNS message)."""
    import json

    payload = {
        "id": delivery_id,
        "type": f"alert.{transition.value}",
        "alert": {
            "event_id": event.event_id,
            "rule_id": event.rule_id,
            "name": event.name,
            "metric": event.metric.value,
            "condition": event.condition.value,
            "building": event.building,
            "room": event.room,
            "state": "active" if transition is Transition.FIRED else "cleared",
            "value": event.value if transition is Transition.FIRED else event.cleared_value,
            "threshold": event.threshold,
            "unit": event.unit,
            "fired_at": _iso(event.fired_ms),
            "cleared_at": None if transition is Transition.FIRED else _iso(event.cleared_ms),
        },
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _iso(ms: int | None) -> str | None:
    from chalicelib.domain.timeutil import format_ms

    return None if ms is None else format_ms(ms)
