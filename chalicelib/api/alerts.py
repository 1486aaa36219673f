"""Alert routes: rules on a room or a building (admin scope) and the alert events (read scope).

Rules hold their targets' URLs (which may carry a token of the receiver), so reading them needs
the admin scope too; the events are what the dashboard shows.
"""

from __future__ import annotations

from typing import Annotated, Any

from chalice.app import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from chalicelib import wiring
from chalicelib.api.http import identifier, json_body, parse_body, parse_query
from chalicelib.api.queries import PageQuery, Query
from chalicelib.api.routing import Reply, route
from chalicelib.api.scope import cursor_after, owner, page_after, reachable
from chalicelib.domain.access import Principal, Scope
from chalicelib.domain.alerts import (
    MAX_MINUTES,
    MAX_TARGETS,
    AlertEvent,
    AlertRule,
    AlertState,
    Delivery,
)
from chalicelib.domain.alerts import Condition as AlertCondition
from chalicelib.domain.cursors import decode_cursor, encode_cursor
from chalicelib.domain.errors import MalformedRequestError
from chalicelib.domain.inputs import Identifier
from chalicelib.domain.models import Metric
from chalicelib.domain.notify import new_secret
from chalicelib.domain.timeutil import Timestamp, now_ms
from chalicelib.domain.units import TemperatureUnit
from chalicelib.services import alerts
from chalicelib.settings import get_settings

alerts_api = Blueprint(__name__)
BUILDING_RULES = "/buildings/{building}/alerts"
ROOM_RULES = "/buildings/{building}/rooms/{room}/alerts"
RULE = "/alerts/rules/{rule_id}"

Threshold = Annotated[float, Field(strict=True, allow_inf_nan=False)]
TargetIn = dict[str, str]

# -- bodies -----------------------------------------------------------------------------------


class AlertRuleIn(BaseModel):
    """A rule: fire when the `minutes` average of `metric` is above/below `threshold` (clear
    once back past `clear_threshold`), or when no reading came for `minutes` ("silent")."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "metric": "temperature",
                    "condition": "above",
                    "threshold": 26,
                    "unit": "C",
                    "minutes": 15,
                    "clear_threshold": 25,
                    "notify": [{"webhook": "https://hooks.example.com/roomtemp"}],
                    "name": "server room too warm",
                }
            ]
        },
    )

    metric: Metric
    condition: AlertCondition
    threshold: Threshold | None = Field(None, description="required unless silent")
    unit: TemperatureUnit | None = Field(None, description="temperature rules only (default C)")
    minutes: int = Field(
        15, ge=1, le=MAX_MINUTES, description="averaging window; silent: minutes without readings"
    )
    clear_threshold: Threshold | None = Field(
        None, description="hysteresis: clears past this (<= threshold for above, >= for below)"
    )
    notify: list[TargetIn] = Field(
        default_factory=list,
        max_length=MAX_TARGETS,
        description='[{"webhook": "https://..."} | {"sns": "arn:aws:sns:..."}]',
    )
    name: str | None = Field(None, min_length=1, max_length=200)


class AlertRulePatch(BaseModel):
    """The fields of a rule to change (its building and room never change)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Metric | None = None
    condition: AlertCondition | None = None
    threshold: Threshold | None = None
    unit: TemperatureUnit | None = None
    minutes: int | None = Field(None, ge=1, le=MAX_MINUTES)
    clear_threshold: Threshold | None = None
    notify: list[TargetIn] | None = Field(None, max_length=MAX_TARGETS)
    name: str | None = Field(None, min_length=1, max_length=200)


# -- answers ----------------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class AlertRuleOut(_Out):
    id: str
    name: str
    building: str
    room: str | None = Field(description="null: every room of the building")
    metric: Metric
    condition: AlertCondition
    threshold: float | None
    unit: TemperatureUnit | None
    minutes: int
    clear_threshold: float | None
    notify: list[dict[str, str]]
    secret_set: bool = Field(description="webhooks are signed; the secret was shown once")
    created_at: Timestamp

    @classmethod
    def of(cls, rule: AlertRule) -> AlertRuleOut:
        return cls(
            id=rule.rule_id,
            name=rule.name,
            building=rule.building,
            room=rule.room,
            metric=rule.metric,
            condition=rule.condition,
            threshold=rule.threshold,
            unit=rule.unit,
            minutes=rule.minutes,
            clear_threshold=rule.clear_threshold,
            notify=[dict(t) for t in rule.notify],
            secret_set=bool(rule.secret),
            created_at=rule.created_ms,
        )


class AlertRuleCreated(AlertRuleOut):
    secret: str = Field(description="signs the webhooks (X-Roomtemp-Signature); shown only now")

    @classmethod
    def created(cls, rule: AlertRule) -> AlertRuleCreated:
        return cls(**AlertRuleOut.of(rule).model_dump(), secret=rule.secret)


class AlertRulesPage(_Out):
    items: list[AlertRuleOut]
    next_cursor: str | None


class DeliveryOut(_Out):
    delivery_id: str
    transition: str
    target: int = Field(description="the target's index in the rule's `notify`")
    kind: str = Field(description="webhook or sns")
    host: str = Field(description="the webhook's host (never its path or query) or SNS endpoint")
    status: str = Field(
        description="pending (retrying), delivered, failed, or skipped (no notify queue)"
    )
    attempts: int
    last_error: str | None

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        return cls(**delivery.model_dump(mode="json", exclude={"ref"}))


class AlertEventOut(_Out):
    id: str
    rule_id: str
    name: str
    metric: Metric
    condition: AlertCondition
    building: str
    room: str
    state: AlertState
    value: float | None = Field(description="the average that fired it; silent: minutes")
    threshold: float | None
    unit: str | None
    fired_at: Timestamp
    cleared_at: Timestamp | None
    cleared_value: float | None
    cleared_by: str | None = Field(
        description='null: the room came back; "rule changed" or "rule deleted": closed by an edit'
    )
    notifications: list[DeliveryOut]

    @classmethod
    def of(cls, event: AlertEvent) -> AlertEventOut:
        return cls(
            id=event.event_id,
            rule_id=event.rule_id,
            name=event.name,
            metric=event.metric,
            condition=event.condition,
            building=event.building,
            room=event.room,
            state=event.state,
            value=event.value,
            threshold=event.threshold,
            unit=event.unit,
            fired_at=event.fired_ms,
            cleared_at=event.cleared_ms,
            cleared_value=event.cleared_value,
            cleared_by=event.cleared_by,
            notifications=[DeliveryOut.of(d) for d in event.deliveries],
        )


class AlertEventsPage(_Out):
    items: list[AlertEventOut]
    next_cursor: str | None


class AlertsQuery(Query):
    state: AlertState | None = Field(None, description="active or cleared (default: both)")
    building: Identifier | None = None
    room: Identifier | None = Field(None, description="with building")
    limit: int = Field(50, ge=1, le=100, description="page size")
    cursor: str | None = Field(None, description="`next_cursor` of the previous page")


# -- rules ------------------------------------------------------------------------------------


def _allow_local() -> bool:
    return get_settings().webhooks_allow_local


def _create(principal: Principal, building: str, room: str | None) -> Reply:
    body = parse_body(AlertRuleIn, json_body(alerts_api.current_request))
    tenant = owner(principal)
    rule = alerts.create_rule(
        wiring.alert_repository(),
        wiring.repositories().registry,
        tenant,
        building,
        room,
        body.model_dump(mode="json", exclude_none=True),
        now_ms=now_ms(),
        secret=new_secret(),
        allow_local=_allow_local(),
    )
    wiring.rules_cache().forget(tenant, building)
    return Reply(
        201, AlertRuleCreated.created(rule), headers={"Location": f"/alerts/rules/{rule.rule_id}"}
    )


def _rules_page(principal: Principal, building: str, room: str | None) -> AlertRulesPage:
    asked = parse_query(PageQuery, alerts_api.current_request)
    after = page_after(asked.cursor, "alert-rules")
    rules, last = alerts.list_rules(
        wiring.alert_repository(),
        wiring.repositories().registry,
        owner(principal),
        building,
        room,
        asked.limit,
        after,
    )
    return AlertRulesPage(
        items=[AlertRuleOut.of(r) for r in rules], next_cursor=cursor_after(last, "alert-rules")
    )


CREATED = {201: (AlertRuleCreated, "The rule, with its webhook secret (shown only now)")}


@route(alerts_api, ROOM_RULES, "POST", Scope.ADMIN, body=AlertRuleIn, responses=CREATED)
def post_room_rule(principal: Principal, building: str, room: str) -> Reply:
    """Create an alert rule on a room."""
    return _create(principal, reachable(principal, building), identifier(room, "room"))


@route(alerts_api, ROOM_RULES, "GET", Scope.ADMIN, query=PageQuery, responses={200: AlertRulesPage})
def list_room_rules(principal: Principal, building: str, room: str) -> AlertRulesPage:
    """The rules watching a room (its own and its building's), paginated."""
    return _rules_page(principal, reachable(principal, building), identifier(room, "room"))


@route(alerts_api, BUILDING_RULES, "POST", Scope.ADMIN, body=AlertRuleIn, responses=CREATED)
def post_building_rule(principal: Principal, building: str) -> Reply:
    """Create an alert rule on every room of a building (rooms added later included)."""
    return _create(principal, reachable(principal, building), None)


@route(
    alerts_api, BUILDING_RULES, "GET", Scope.ADMIN, query=PageQuery, responses={200: AlertRulesPage}
)
def list_building_rules(principal: Principal, building: str) -> AlertRulesPage:
    """Every alert rule of a building (room rules and building-wide ones), paginated."""
    return _rules_page(principal, reachable(principal, building), None)


def _owned(principal: Principal, rule_id: str) -> AlertRule:
    rule = alerts.owned_rule(
        wiring.alert_repository(), owner(principal), identifier(rule_id, "rule_id")
    )
    reachable(principal, rule.building)  # a key bound to other buildings: 404
    return rule


@route(alerts_api, RULE, "GET", Scope.ADMIN, responses={200: AlertRuleOut})
def get_rule(principal: Principal, rule_id: str) -> AlertRuleOut:
    """One alert rule (its secret is never shown again)."""
    return AlertRuleOut.of(_owned(principal, rule_id))


@route(alerts_api, RULE, "PATCH", Scope.ADMIN, body=AlertRulePatch, responses={200: AlertRuleOut})
def patch_rule(principal: Principal, rule_id: str) -> AlertRuleOut:
    """Change an alert rule (threshold, window, targets, name...). Changing its metric, condition
    or unit needs its thresholds in the same PATCH (422 otherwise) and starts it over: active
    events close with `cleared_by: "rule changed"`."""
    patch = parse_body(AlertRulePatch, json_body(alerts_api.current_request))
    found = _owned(principal, rule_id)
    changes: dict[str, Any] = {name: getattr(patch, name) for name in patch.model_fields_set}
    changes = {k: (v.value if hasattr(v, "value") else v) for k, v in changes.items()}
    updated = alerts.update_rule(
        wiring.alert_repository(),
        found.tenant,
        found.rule_id,
        changes,
        allow_local=_allow_local(),
        now_ms=now_ms(),
    )
    wiring.rules_cache().forget(found.tenant, found.building)
    return AlertRuleOut.of(updated)


@route(alerts_api, RULE, "DELETE", Scope.ADMIN, responses={204: "Deleted"})
def delete_rule(principal: Principal, rule_id: str) -> Reply:
    """Delete an alert rule; its events stay (active ones are closed)."""
    found = _owned(principal, rule_id)
    alerts.delete_rule(wiring.alert_repository(), found.tenant, found.rule_id, now_ms=now_ms())
    wiring.rules_cache().forget(found.tenant, found.building)
    return Reply(204)


# -- events -----------------------------------------------------------------------------------


@route(
    alerts_api, "/alerts", "GET", Scope.READ, query=AlertsQuery, responses={200: AlertEventsPage}
)
def list_alerts(principal: Principal) -> AlertEventsPage:
    """Alert events of the caller's tenant: active first, then cleared; by building and room (a
    key bound to buildings: of those buildings)."""
    asked = parse_query(AlertsQuery, alerts_api.current_request)
    if asked.room is not None and asked.building is None:
        raise MalformedRequestError("room: give building too")
    buildings: list[str] | None = None
    if asked.building is not None:
        buildings = [reachable(principal, asked.building)]
    elif principal.buildings is not None:  # read per bound building: pages stay full
        buildings = sorted(principal.buildings)
    after = None
    if asked.cursor is not None:
        state = decode_cursor(asked.cursor, wiring.cursor_secret())
        after = state.get("a")
        if state.get("k") != "alerts" or not isinstance(after, str) or len(after) > 400:
            raise MalformedRequestError("cursor: not a cursor of this list")
    events, last = alerts.list_events(
        wiring.alert_repository(),
        owner(principal),
        state=asked.state,
        buildings=buildings,
        room=asked.room,
        limit=asked.limit,
        after=after,
    )
    cursor = (
        None if last is None else encode_cursor({"k": "alerts", "a": last}, wiring.cursor_secret())
    )
    return AlertEventsPage(
        items=[AlertEventOut.of(e) for e in events],
        next_cursor=cursor,
    )
