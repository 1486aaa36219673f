"""DynamoDB adapter of the alert repository: rules, (rule, room) states and alert events in the
tenant's building's alert partition (keys.alerts_pk), a pointer per rule id, two gsi1 lists.

Rules are JSON documents (`doc`); a state is three numbers and an event id; an event keeps its
fixed part as a document and what changes (state, clearing, deliveries) as attributes, so the
notifier and the stream consumer never overwrite each other's writes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws import keys
from chalicelib.aws.dynamo import DynamoTable, Item
from chalicelib.aws.items import number
from chalicelib.aws.retry import error_code
from chalicelib.domain.alerts import (
    CLOSED_BY_RULE_DELETE,
    AlertEvent,
    AlertRule,
    AlertState,
    Condition,
    Delivery,
    RoomState,
)
from chalicelib.domain.timeutil import format_ms

_EVENT_FIXED = ("state", "cleared_ms", "cleared_value", "cleared_by", "deliveries")


def _key(pair: tuple[str, str]) -> Item:
    return {"pk": {"S": pair[0]}, "sk": {"S": pair[1]}}


def _rule_item(rule: AlertRule) -> Item:
    item = _key(keys.alert_rule_key(rule.tenant, rule.building, rule.rule_id))
    item["doc"] = {"S": rule.model_dump_json()}
    if rule.condition is Condition.SILENT:
        index_pk, index_sk = keys.silent_rule_index(rule.tenant, rule.building, rule.rule_id)
        item["gsi1pk"] = {"S": index_pk}
        item["gsi1sk"] = {"S": index_sk}
    return item


def _event_index_sk(event: AlertEvent, state: AlertState) -> str:
    return keys.alert_event_index_sk(
        state.value, event.building, event.room, event.fired_ms, event.event_id
    )


def _event_item(event: AlertEvent) -> Item:
    item = _key(keys.alert_event_key(event.tenant, event.building, event.event_id))
    item["doc"] = {"S": event.model_dump_json(exclude=set(_EVENT_FIXED))}
    item["st"] = {"S": event.state.value}
    item["d"] = {"M": {}}
    item["gsi1pk"] = {"S": keys.alert_events_pk(event.tenant)}
    item["gsi1sk"] = {"S": _event_index_sk(event, event.state)}
    return item


def _event_of(item: Item) -> AlertEvent:
    fields: dict[str, Any] = json.loads(item["doc"]["S"])
    fields["state"] = item["st"]["S"]
    if "cleared_ms" in item:
        fields["cleared_ms"] = int(item["cleared_ms"]["N"])
    if "cleared_value" in item:
        fields["cleared_value"] = float(item["cleared_value"]["N"])
    if "cb" in item:
        fields["cleared_by"] = item["cb"]["S"]
    recorded = sorted((item.get("d") or {}).get("M", {}).items())
    fields["deliveries"] = [json.loads(value["S"]) for _, value in recorded]
    return AlertEvent.model_validate(fields)


def _state_of(rule_id: str, room: str, item: Item) -> RoomState:
    return RoomState(
        rule_id=rule_id,
        room=room,
        transitions=int(item.get("n", {}).get("N", "0")),
        enqueued=int(item.get("q", {}).get("N", "0")),
        event_id=item.get("e", {}).get("S"),
        evaluated_ms=int(item.get("w", {}).get("N", "0")),
    )


class DynamoAlertRepository:
    """Alert rules, states and events in the one table."""

    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    # -- rules --------------------------------------------------------------------------------

    def create_rule(self, rule: AlertRule) -> None:
        """The rule and its pointer in one transaction (ids are random: never taken)."""
        pointer = _key(keys.alert_rule_pointer(rule.tenant, rule.rule_id))
        pointer["building"] = {"S": rule.building}
        pointer["tenant"] = {"S": rule.tenant}
        self._transact(
            [
                {
                    "Put": {
                        "Item": _rule_item(rule),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Put": {"Item": pointer, "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
        )

    def get_rule(self, tenant: str, rule_id: str) -> AlertRule | None:
        """Pointer, then rule: two reads by key."""
        pointer = self._table.get(_key(keys.alert_rule_pointer(tenant, rule_id)))
        if pointer is None:
            return None
        item = self._table.get(_key(keys.alert_rule_key(tenant, pointer["building"]["S"], rule_id)))
        return None if item is None else AlertRule.model_validate_json(item["doc"]["S"])

    def save_rule(self, rule: AlertRule) -> None:
        """Replace the rule item (a condition change moves it in or out of the silent list)."""
        self._table.put(_rule_item(rule))

    def delete_rule(self, rule: AlertRule, now_ms: int) -> None:
        """States first (closing active events), then the rule and its pointer."""
        self.reset_states(rule, now_ms, CLOSED_BY_RULE_DELETE)
        self._table.batch_write(
            deletes=[
                _key(keys.alert_rule_key(rule.tenant, rule.building, rule.rule_id)),
                _key(keys.alert_rule_pointer(rule.tenant, rule.rule_id)),
            ]
        )

    def reset_states(self, rule: AlertRule, now_ms: int, reason: str) -> None:
        """Delete every state of the rule, closing its active events (`cleared_by` reason)."""
        pk = keys.alerts_pk(rule.tenant, rule.building)
        states = list(
            self._table.query(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={
                    ":pk": {"S": pk},
                    ":prefix": {"S": keys.alert_states_of_rule(rule.rule_id)},
                },
                ConsistentRead=True,
            )
        )
        for item in states:
            if int(item.get("n", {}).get("N", "0")) % 2 == 1 and "e" in item:
                self._close_quietly(rule.tenant, rule.building, item["e"]["S"], now_ms, reason)
        self._table.batch_write(deletes=[{"pk": i["pk"], "sk": i["sk"]} for i in states])

    def _close_quietly(
        self, tenant: str, building: str, event_id: str, now_ms: int, reason: str
    ) -> None:
        item = self._table.get(_key(keys.alert_event_key(tenant, building, event_id)))
        if item is None or item["st"]["S"] != AlertState.ACTIVE.value:
            return
        event = _event_of(item)
        self._table.update(
            _key(keys.alert_event_key(tenant, building, event_id)),
            UpdateExpression="SET st = :cleared, cleared_ms = :at, cb = :by, gsi1sk = :sk",
            ConditionExpression="st = :active",
            ExpressionAttributeValues={
                ":cleared": {"S": AlertState.CLEARED.value},
                ":active": {"S": AlertState.ACTIVE.value},
                ":at": {"N": str(now_ms)},
                ":by": {"S": reason},
                ":sk": {"S": _event_index_sk(event, AlertState.CLEARED)},
            },
        )

    def rules_of_building(self, tenant: str, building: str) -> list[AlertRule]:
        """One Query of the building's alert partition, rule items only."""
        items = self._table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={
                ":pk": {"S": keys.alerts_pk(tenant, building)},
                ":prefix": {"S": keys.ALERT_RULE_PREFIX},
            },
        )
        return [AlertRule.model_validate_json(item["doc"]["S"]) for item in items]

    def silent_rules(self) -> list[AlertRule]:
        """Every tenant's silent rules: one Query per shard of their gsi1 list."""
        rules: list[AlertRule] = []
        for index_pk in keys.silent_rule_partitions():
            items = self._table.query(
                IndexName=keys.GSI1,
                KeyConditionExpression="gsi1pk = :pk",
                ExpressionAttributeValues={":pk": {"S": index_pk}},
            )
            rules.extend(AlertRule.model_validate_json(item["doc"]["S"]) for item in items)
        return rules

    # -- states and transitions ---------------------------------------------------------------

    def states(
        self, tenant: str, building: str, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], RoomState]:
        """One consistent BatchGetItem per 100 pairs."""
        if not pairs:
            return {}
        wanted = {keys.alert_state_key(tenant, building, *pair): pair for pair in pairs}
        found = self._table.batch_get([_key(k) for k in wanted], consistent=True)
        states: dict[tuple[str, str], RoomState] = {}
        for item in found:
            pair = wanted[(item["pk"]["S"], item["sk"]["S"])]
            states[pair] = _state_of(*pair, item)
        return states

    def transition(
        self, tenant: str, building: str, before: RoomState, after: RoomState, event: AlertEvent
    ) -> bool:
        """State (conditional on its transition count), event and a check that the rule still
        exists (a warm rules cache may hold a deleted one), in one transaction."""
        state = _key(keys.alert_state_key(tenant, building, after.rule_id, after.room))
        state.update(
            {
                "n": {"N": str(after.transitions)},
                "q": {"N": str(after.enqueued)},
                "w": {"N": str(after.evaluated_ms)},
                "tenant": {"S": tenant},
            }
        )
        if after.event_id is not None:
            state["e"] = {"S": after.event_id}
        if after.enqueued < after.transitions:  # listed until its notification is enqueued
            index_pk, index_sk = keys.unsent_state_index(
                tenant, building, after.rule_id, after.room, int(time.time() * 1000)
            )
            state["gsi1pk"] = {"S": index_pk}
            state["gsi1sk"] = {"S": index_sk}
        if before.transitions == 0:  # the item may hold a high-water mark only
            state_write: dict[str, Any] = {
                "Put": {"Item": state, "ConditionExpression": "attribute_not_exists(n)"}
            }
        else:
            state_write = {
                "Put": {
                    "Item": state,
                    "ConditionExpression": "n = :before",
                    "ExpressionAttributeValues": {":before": {"N": str(before.transitions)}},
                }
            }
        event_key = _key(keys.alert_event_key(tenant, building, event.event_id))
        if event.state is AlertState.ACTIVE:
            event_write: dict[str, Any] = {
                "Put": {
                    "Item": _event_item(event),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        else:
            values: dict[str, Any] = {
                ":cleared": {"S": AlertState.CLEARED.value},
                ":at": {"N": str(event.cleared_ms)},
                ":sk": {"S": _event_index_sk(event, AlertState.CLEARED)},
            }
            sets = "st = :cleared, cleared_ms = :at, gsi1sk = :sk"
            if event.cleared_value is not None:
                values[":value"] = number(event.cleared_value)
                sets += ", cleared_value = :value"
            event_write = {
                "Update": {
                    "Key": event_key,
                    "UpdateExpression": f"SET {sets}",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeValues": values,
                }
            }
        rule_check = {
            "ConditionCheck": {
                "Key": _key(keys.alert_rule_key(tenant, building, after.rule_id)),
                "ConditionExpression": "attribute_exists(pk)",
            }
        }
        return self._transact([state_write, event_write, rule_check])

    def mark_evaluated(self, tenant: str, building: str, states: Sequence[RoomState]) -> None:
        """Raise each state's high-water mark (never lower it): one UpdateItem each."""
        for state in states:
            self._table.update(
                _key(keys.alert_state_key(tenant, building, state.rule_id, state.room)),
                UpdateExpression="SET w = :w, tenant = :tenant",
                ConditionExpression="attribute_not_exists(w) OR w < :w",
                ExpressionAttributeValues={
                    ":w": {"N": str(state.evaluated_ms)},
                    ":tenant": {"S": tenant},
                },
            )

    def mark_enqueued(self, tenant: str, building: str, state: RoomState) -> None:
        """Raise the state's enqueued mark (never lower it); off the unsent list once it has
        caught up with the transitions."""
        key = _key(keys.alert_state_key(tenant, building, state.rule_id, state.room))
        values = {":q": {"N": str(state.enqueued)}}
        rising = "attribute_exists(pk) AND (attribute_not_exists(q) OR q < :q)"
        if not self._table.update(
            key,
            UpdateExpression="SET q = :q REMOVE gsi1pk, gsi1sk",
            ConditionExpression=f"{rising} AND n = :q",
            ExpressionAttributeValues=values,
        ):
            self._table.update(
                key,
                UpdateExpression="SET q = :q",
                ConditionExpression=rising,
                ExpressionAttributeValues=values,
            )

    def unsent_states(self, before_ms: int) -> list[tuple[AlertRule, RoomState]]:
        """States listed as not yet enqueued since before `before_ms`, with their rules (one
        Query of a partition that is empty while the notify queue works)."""
        found: list[tuple[AlertRule, RoomState]] = []
        items = self._table.query(
            IndexName=keys.GSI1,
            KeyConditionExpression="gsi1pk = :pk AND gsi1sk < :before",
            ExpressionAttributeValues={
                ":pk": {"S": keys.UNSENT_STATES_PK},
                ":before": {"S": format_ms(before_ms)},
            },
        )
        for item in items:
            tenant, building, rule_id, room = keys.parse_alert_state(
                item["pk"]["S"], item["sk"]["S"]
            )
            rule = self._table.get(_key(keys.alert_rule_key(tenant, building, rule_id)))
            if rule is not None:
                found.append(
                    (
                        AlertRule.model_validate_json(rule["doc"]["S"]),
                        _state_of(rule_id, room, item),
                    )
                )
        return found

    # -- events -------------------------------------------------------------------------------

    def get_event(self, tenant: str, building: str, event_id: str) -> AlertEvent | None:
        """One event, read consistently."""
        item = self._table.get(_key(keys.alert_event_key(tenant, building, event_id)))
        return None if item is None else _event_of(item)

    def record_delivery(
        self, tenant: str, building: str, event_id: str, index: int, delivery: Delivery
    ) -> None:
        """One entry of the event's delivery map (one per delivery id and target)."""
        self._table.update(
            _key(keys.alert_event_key(tenant, building, event_id)),
            UpdateExpression="SET d.#k = :v",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#k": f"{delivery.delivery_id}#{index:02d}"},
            ExpressionAttributeValues={":v": {"S": delivery.model_dump_json()}},
        )

    def list_events(
        self,
        tenant: str,
        states: Sequence[str],
        buildings: Sequence[str] | None,
        room: str | None,
        limit: int,
        after: str | None,
    ) -> tuple[list[AlertEvent], str | None]:
        """gsi1 ranges, one per state (and building), read in order from `after` on."""
        found: list[tuple[str, AlertEvent]] = []
        places: list[str | None] = [None] if buildings is None else [*sorted(buildings)]
        for state, building in ((s, b) for s in states for b in places):
            prefix = keys.alert_event_prefix(state, building, room)
            high = prefix + keys.HIGH
            if after is not None and after >= high:
                continue
            low = prefix if after is None or after < prefix else after + "!"
            items = self._table.query(
                IndexName=keys.GSI1,
                KeyConditionExpression="gsi1pk = :pk AND gsi1sk BETWEEN :low AND :high",
                ExpressionAttributeValues={
                    ":pk": {"S": keys.alert_events_pk(tenant)},
                    ":low": {"S": low},
                    ":high": {"S": high},
                },
                Limit=limit + 1 - len(found),
            )
            for item in items:
                found.append((item["gsi1sk"]["S"], _event_of(item)))
                if len(found) > limit:
                    break
            if len(found) > limit:
                break
        more = len(found) > limit
        page = found[:limit]
        return [event for _, event in page], (page[-1][0] if more else None)

    def delete_for_room(self, tenant: str, building: str, room: str) -> int:
        """The room's rules (and pointers), every rule's state of the room and the room's
        events; how many items."""
        pk = keys.alerts_pk(tenant, building)
        doomed: list[Item] = []
        event_ids: set[str] = set()
        for item in self._table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": pk}, ":prefix": {"S": keys.ALERT_RULE_PREFIX}},
            ConsistentRead=True,
        ):
            rule = AlertRule.model_validate_json(item["doc"]["S"])
            if rule.room == room:
                doomed.append(_key(keys.alert_rule_key(tenant, building, rule.rule_id)))
                doomed.append(_key(keys.alert_rule_pointer(tenant, rule.rule_id)))
        for item in self._table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": pk}, ":prefix": {"S": keys.ALERT_STATE_PREFIX}},
            ConsistentRead=True,
        ):
            if keys.parse_alert_state(item["pk"]["S"], item["sk"]["S"])[3] == room:
                doomed.append({"pk": item["pk"], "sk": item["sk"]})
                if "e" in item:  # the last firing's event: found even before gsi1 has it
                    event_ids.add(item["e"]["S"])
        for state in AlertState:
            prefix = keys.alert_event_prefix(state.value, building, room)
            for item in self._table.query(
                IndexName=keys.GSI1,
                KeyConditionExpression="gsi1pk = :pk AND gsi1sk BETWEEN :low AND :high",
                ExpressionAttributeValues={
                    ":pk": {"S": keys.alert_events_pk(tenant)},
                    ":low": {"S": prefix},
                    ":high": {"S": prefix + keys.HIGH},
                },
                ProjectionExpression="pk, sk",
            ):
                event_ids.add(keys.parse_alert_event_sk(item["sk"]["S"]))
        doomed += [_key(keys.alert_event_key(tenant, building, e)) for e in sorted(event_ids)]
        self._table.batch_write(deletes=doomed)
        return len(doomed)

    def delete_for_building(self, tenant: str, building: str) -> int:
        """The whole alert partition, and the pointers of its rules."""
        items = list(
            self._table.query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": keys.alerts_pk(tenant, building)}},
                ProjectionExpression="pk, sk",
            )
        )
        pointers = [
            _key(keys.alert_rule_pointer(tenant, keys.parse_alert_rule_sk(i["sk"]["S"])))
            for i in items
            if i["sk"]["S"].startswith(keys.ALERT_RULE_PREFIX)
        ]
        self._table.batch_write(
            deletes=[*pointers, *({"pk": i["pk"], "sk": i["sk"]} for i in items)]
        )
        return len(items)

    # -- transactions -------------------------------------------------------------------------

    def _transact(self, writes: list[dict[str, Any]]) -> bool:
        """TransactWriteItems under the retry policy; False when a condition failed."""
        for write in writes:
            next(iter(write.values()))["TableName"] = self._table.name
        try:
            self._table.retrier.call(self._table.client.transact_write_items, TransactItems=writes)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                return False
            raise
        return True
