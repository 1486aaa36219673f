"""In-memory adapters of every port: the fakes of the unit tests and benchmarks.

The contract suites (tests/integration, tests/rollups) run the same tests against these and the
AWS adapters, so a fake cannot drift from what it stands in for.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from chalicelib.domain.access import ApiKey
from chalicelib.domain.alerts import (
    CLOSED_BY_RULE_DELETE,
    AlertEvent,
    AlertRule,
    AlertState,
    RoomState,
)
from chalicelib.domain.alerts import Delivery as AlertDelivery
from chalicelib.domain.models import Metric, Position, Reading, TableChange, WriteResult
from chalicelib.domain.notify import DeliveryError, Target
from chalicelib.domain.registry import Building, Page, Room, Sensor, Tenant
from chalicelib.domain.reports import Report, ReportStatus, ReportSummary
from chalicelib.domain.rollups import (
    HOUR_MS,
    MINUTE_MS,
    Resolution,
    Rollup,
    floor_to,
)
from chalicelib.domain.timeutil import format_ms, now_ms
from chalicelib.ports import Begun, ObjectGoneError, ReadingRepository, Repositories

R = TypeVar("R")

_Key = tuple[int, str]


Place = tuple[str, str, str]  # tenant, building, room


class InMemoryReadingRepository:
    """Readings per tenant's room in a sorted list of (timestamp, sensor) keys; rollups kept by
    `refresh` only, as the stream consumer keeps the table's. New readings are also logged as
    the table's stream would carry them (`take_changes`), so tests fold them as the consumer
    does."""

    def __init__(self) -> None:
        self._keys: dict[Place, list[_Key]] = {}
        self._items: dict[Place, dict[_Key, Reading]] = {}
        self._unsorted: set[Place] = set()
        self._rollups: dict[tuple[Place, Resolution], dict[int, Rollup]] = {}
        self._rooms: dict[tuple[str, str], set[str]] = {}
        self._fresh: dict[Place, int] = {}
        self._changes: list[TableChange] = []
        self._sequence = 0
        self.rollups_written = 0

    def _sorted_keys(self, place: Place) -> list[_Key]:
        keys = self._keys.get(place, [])
        if place in self._unsorted:
            keys.sort()
            self._unsorted.discard(place)
        return keys

    def put_readings(self, readings: Sequence[Reading]) -> WriteResult:
        """Store readings not stored yet; count the rest as duplicates."""
        accepted = duplicates = 0
        for reading in readings:
            place = (reading.tenant, reading.building, reading.room)
            items = self._items.setdefault(place, {})
            key = (reading.ts_ms, reading.sensor_id)
            if key in items:
                duplicates += 1
                continue
            items[key] = reading
            keys = self._keys.setdefault(place, [])
            if keys and keys[-1] > key:
                self._unsorted.add(place)  # sorted on the next read: writes stay O(1)
            keys.append(key)
            accepted += 1
            self._rooms.setdefault(place[:2], set()).add(reading.room)
            self._sequence += 1
            self._changes.append(TableChange(str(self._sequence), now_ms(), reading))
        return WriteResult(accepted=accepted, duplicates=duplicates)

    def take_changes(self) -> list[TableChange]:
        """The stream records of the readings stored since the last call."""
        changes, self._changes = self._changes, []
        return changes

    def refresh(self, readings: Sequence[Reading], *, as_of_ms: int) -> int:
        """Recompute the touched minutes, then their hours (as the DynamoDB adapter does)."""
        written = 0
        minutes = {((r.tenant, r.building, r.room), floor_to(r.ts_ms, MINUTE_MS)) for r in readings}
        changed_hours: set[tuple[Place, int]] = set()
        for place, minute in sorted(minutes):
            window = self.window(*place, minute - 1, minute + MINUTE_MS - 1)
            rollup = Rollup.of_readings(window, whole_minute=True)
            stored = self._rollups.setdefault((place, Resolution.MINUTE), {})
            if rollup.readings and (
                minute not in stored or stored[minute].readings < rollup.readings
            ):
                stored[minute] = rollup
                written += 1
                changed_hours.add((place, floor_to(minute, HOUR_MS)))
        for place, hour in sorted(changed_hours):
            parts = self.rollups(*place, Resolution.MINUTE, hour, hour + HOUR_MS)
            stored = self._rollups.setdefault((place, Resolution.HOUR), {})
            stored[hour] = Rollup.of_minutes(r for _, r in parts)
            written += 1
        for place, _ in changed_hours:
            self._fresh[place] = max(self._fresh.get(place, as_of_ms), as_of_ms)
        self.rollups_written += written
        return written

    def freshness(self, tenant: str, building: str, room: str) -> int | None:
        """Until when the room's rollups hold every reading (the last refresh's as_of)."""
        return self._fresh.get((tenant, building, room))

    def rollups(
        self,
        tenant: str,
        building: str,
        room: str,
        resolution: Resolution,
        from_ms: int,
        to_ms: int,
    ) -> list[tuple[int, Rollup]]:
        """Stored rollups of `resolution` starting in [from_ms, to_ms), in time order."""
        stored = self._rollups.get(((tenant, building, room), resolution), {})
        return [
            (start, copy_rollup(stored[start]))
            for start in sorted(stored)
            if from_ms <= start < to_ms
        ]

    def rooms_of(self, tenant: str, building: str) -> list[str]:
        """The building's rooms that have readings."""
        return sorted(self._rooms.get((tenant, building), ()))

    def window(
        self,
        tenant: str,
        building: str,
        room: str,
        after_ms: int,
        until_ms: int,
        metric: Metric | None = None,
    ) -> list[Reading]:
        """Readings with after_ms < ts <= until_ms."""
        place = (tenant, building, room)
        keys = self._sorted_keys(place)
        items = self._items.get(place, {})
        lo = bisect.bisect_left(keys, (after_ms + 1, ""))
        hi = bisect.bisect_left(keys, (until_ms + 1, ""))
        return [items[k] for k in keys[lo:hi]]

    def latest(self, tenant: str, building: str, room: str) -> Reading | None:
        """The most recent reading of the room."""
        place = (tenant, building, room)
        keys = self._sorted_keys(place)
        if not keys:
            return None
        return self._items[place][keys[-1]]

    def page(
        self,
        tenant: str,
        building: str,
        room: str,
        from_ms: int,
        to_ms: int,
        limit: int,
        after: Position | None,
    ) -> tuple[list[Reading], bool]:
        """Up to `limit` readings in [from_ms, to_ms) strictly after `after`."""
        place = (tenant, building, room)
        keys = self._sorted_keys(place)
        items = self._items.get(place, {})
        if after is None:
            lo = bisect.bisect_left(keys, (from_ms, ""))
        else:
            lo = bisect.bisect_right(keys, (after.ts_ms, after.sensor_id))
        hi = bisect.bisect_left(keys, (to_ms, ""))
        selected = keys[lo:hi][: limit + 1]
        return [items[k] for k in selected[:limit]], len(selected) > limit

    def has_readings(self, tenant: str, building: str, room: str) -> bool:
        """Whether the room holds any reading."""
        return bool(self._keys.get((tenant, building, room)))

    def delete_room_data(self, tenant: str, building: str, room: str) -> int:
        """Forget the room's readings and their rollups."""
        place = (tenant, building, room)
        self._keys.pop(place, None)
        self._unsorted.discard(place)
        for resolution in Resolution:
            self._rollups.pop((place, resolution), None)
        self._fresh.pop(place, None)
        self._rooms.get((tenant, building), set()).discard(room)
        return len(self._items.pop(place, {}))

    def ping(self) -> None:
        """Always answers."""


def _page(items: dict[str, Any], limit: int, after: str | None) -> Page:
    ids = sorted(i for i in items if after is None or i > after)
    chosen = ids[:limit]
    more = len(ids) > limit
    return Page(items=tuple(items[i] for i in chosen), next_after=chosen[-1] if more else None)


class InMemoryRegistryRepository:
    """Tenants, buildings, rooms and sensors in dicts."""

    def __init__(self) -> None:
        self.tenants: dict[str, Tenant] = {}
        self.buildings: dict[tuple[str, str], Building] = {}
        self.rooms: dict[tuple[str, str], dict[str, Room]] = {}
        self.sensors: dict[str, dict[str, Sensor]] = {}

    def create_tenant(self, tenant: Tenant) -> bool:
        return self.tenants.setdefault(tenant.tenant, tenant) is tenant

    def get_tenant(self, tenant: str) -> Tenant | None:
        return self.tenants.get(tenant)

    def save_tenant(self, tenant: Tenant) -> None:
        self.tenants[tenant.tenant] = tenant

    def list_tenants(self, limit: int, after: str | None) -> Page:
        return _page(self.tenants, limit, after)

    def create_building(self, building: Building) -> bool:
        key = (building.tenant, building.building)
        return self.buildings.setdefault(key, building) is building

    def get_building(self, tenant: str, building: str) -> Building | None:
        return self.buildings.get((tenant, building))

    def save_building(self, building: Building) -> None:
        self.buildings[(building.tenant, building.building)] = building

    def delete_building(self, tenant: str, building: str) -> None:
        self.buildings.pop((tenant, building), None)
        self.rooms.pop((tenant, building), None)

    def list_buildings(self, tenant: str, limit: int, after: str | None) -> Page:
        owned = {k[1]: b for k, b in self.buildings.items() if k[0] == tenant}
        return _page(owned, limit, after)

    def create_room(self, room: Room) -> bool:
        rooms = self.rooms.setdefault((room.tenant, room.building), {})
        return rooms.setdefault(room.room, room) is room

    def get_room(self, tenant: str, building: str, room: str) -> Room | None:
        return self.rooms.get((tenant, building), {}).get(room)

    def existing_rooms(
        self, tenant: str, places: Sequence[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        return {(b, r) for b, r in places if self.get_room(tenant, b, r) is not None}

    def save_room(self, room: Room) -> None:
        self.rooms.setdefault((room.tenant, room.building), {})[room.room] = room

    def delete_room(self, tenant: str, building: str, room: str) -> None:
        self.rooms.get((tenant, building), {}).pop(room, None)

    def list_rooms(self, tenant: str, building: str, limit: int, after: str | None) -> Page:
        return _page(self.rooms.get((tenant, building), {}), limit, after)

    def create_sensor(self, sensor: Sensor) -> bool:
        sensors = self.sensors.setdefault(sensor.tenant, {})
        return sensors.setdefault(sensor.sensor_id, sensor) is sensor

    def get_sensor(self, tenant: str, sensor_id: str) -> Sensor | None:
        return self.sensors.get(tenant, {}).get(sensor_id)

    def save_sensor(self, sensor: Sensor) -> None:
        self.sensors.setdefault(sensor.tenant, {})[sensor.sensor_id] = sensor

    def delete_sensor(self, tenant: str, sensor_id: str) -> None:
        self.sensors.get(tenant, {}).pop(sensor_id, None)

    def list_sensors(self, tenant: str, limit: int, after: str | None) -> Page:
        return _page(self.sensors.get(tenant, {}), limit, after)


class InMemoryIdempotencyStore:
    """Idempotency-Key attempts in a dict (the same rules as aws/idempotency.py)."""

    def __init__(self) -> None:
        self.attempts: dict[tuple[str, str], dict[str, Any]] = {}

    def begin(self, scope: str, key: str, request: str, now_ms: int, lease_ms: int) -> Begun:
        found = self.attempts.get((scope, key))
        if found is None:
            self.attempts[(scope, key)] = {
                "request": request,
                "state": "running",
                "now": now_ms,
                "started": now_ms,
            }
            return Begun("new", now_ms)
        if found["request"] != request:
            return Begun("mismatch", found["now"])
        if found["state"] == "done":
            return Begun("done", found["now"], found["status"], found["body"])
        if found["state"] == "running" and now_ms - found["started"] < lease_ms:
            return Begun("busy", found["now"])
        found.update(state="running", started=now_ms)
        return Begun("resume", found["now"])

    def finish(self, scope: str, key: str, status: int, body: str) -> None:
        self.attempts[(scope, key)].update(state="done", status=status, body=body)

    def release(self, scope: str, key: str) -> None:
        self.attempts[(scope, key)]["state"] = "released"


class InMemoryKeyRepository:
    """API keys in a dict."""

    def __init__(self) -> None:
        self.keys: dict[str, ApiKey] = {}

    def create_key(self, key: ApiKey) -> None:
        self.keys[key.key_id] = key

    def get_key(self, key_id: str) -> ApiKey | None:
        return self.keys.get(key_id)

    def save_key(self, key: ApiKey) -> None:
        self.keys[key.key_id] = key

    def list_keys(self, tenant: str | None, limit: int, after: str | None) -> Page:
        owned = {k: v for k, v in self.keys.items() if v.tenant == tenant}
        return _page(owned, limit, after)


def copy_rollup(rollup: Rollup) -> Rollup:
    """A deep copy, so callers merging into a result cannot change what is stored."""
    copy = Rollup()
    copy.merge(rollup)
    return copy


class InMemoryReportRepository:
    """Reports in dicts; results kept as the objects the AWS adapter would write."""

    def __init__(self) -> None:
        self._reports: dict[str, Report] = {}
        self.objects: dict[str, bytes] = {}

    def create(self, report: Report) -> bool:
        """Store a pending report unless the id exists."""
        if report.id in self._reports:
            return False
        self._reports[report.id] = report
        return True

    def get(self, report_id: str) -> Report | None:
        """The report, or None."""
        return self._reports.get(report_id)

    def _update(self, report_id: str, **changes: Any) -> None:
        report = self._reports.get(report_id)
        if report is None or report.status in (ReportStatus.COMPLETED, ReportStatus.FAILED):
            return
        self._reports[report_id] = report.model_copy(update=changes)

    def mark_running(self, report_id: str, started_ms: int) -> None:
        """Status running."""
        self._update(report_id, status=ReportStatus.RUNNING, started_ms=started_ms)

    def release(self, report_id: str) -> None:
        """Back to pending."""
        self._update(report_id, status=ReportStatus.PENDING, started_ms=None)

    def complete(
        self,
        report_id: str,
        finished_ms: int,
        result: dict[str, Any],
        csv: str,
        summary: dict[str, Any],
    ) -> None:
        """Keep the result and CSV, then mark completed."""
        body = json.dumps(result).encode()
        self.objects[f"reports/{report_id}.json"] = body
        self.objects[f"reports/{report_id}.csv"] = csv.encode()
        self._update(
            report_id,
            status=ReportStatus.COMPLETED,
            finished_ms=finished_ms,
            result_bytes=len(body),
            summary=ReportSummary.model_validate(summary),
        )

    def fail(self, report_id: str, finished_ms: int, message: str) -> None:
        """Mark failed."""
        self._update(report_id, status=ReportStatus.FAILED, finished_ms=finished_ms, error=message)

    def result(self, report_id: str) -> dict[str, Any] | None:
        """The stored JSON result."""
        raw = self.objects.get(f"reports/{report_id}.json")
        return None if raw is None else dict(json.loads(raw))

    def csv_link(self, report_id: str) -> str:
        """A memory: link (there is no server to fetch it from)."""
        return f"memory://reports/{report_id}.csv"

    def result_link(self, report_id: str) -> str:
        """A memory: link (there is no server to fetch it from)."""
        return f"memory://reports/{report_id}.json"

    def delete_for_building(self, tenant: str, building: str) -> int:
        """Forget the building's reports and their objects."""
        doomed = [
            r.id
            for r in self._reports.values()
            if r.tenant == tenant and r.spec.building == building
        ]
        for report_id in doomed:
            del self._reports[report_id]
            self.objects.pop(f"reports/{report_id}.json", None)
            self.objects.pop(f"reports/{report_id}.csv", None)
        return len(doomed)


class InMemoryObjectStore:
    """A bucket as a dict of key -> bytes; ETags are MD5 hex like S3's single-part ETags."""

    def __init__(self, clock: Callable[[], int] = lambda: 0) -> None:
        self.objects: dict[str, bytes] = {}
        self.opened: list[tuple[str, int]] = []
        self.clock = clock  # epoch ms: when put() stores an object (stored_ms)
        self.stored: dict[str, int] = {}
        self.reads = 0  # get_json, etag and stored_ms calls (S3 round trips)

    def put(self, key: str, data: bytes) -> str:
        """Store an object; return its ETag."""
        self.objects[key] = data
        self.stored[key] = self.clock()
        return hashlib.md5(data).hexdigest()

    def stored_ms(self, key: str) -> int:
        """When put() stored the object."""
        self.reads += 1
        if key not in self.objects:
            raise ObjectGoneError(f"object {key} is gone")
        return self.stored.get(key, 0)

    def each(self, work: Callable[[str], R], keys: Sequence[str]) -> Iterator[R]:
        """`work` over `keys`, in turn."""
        return map(work, keys)

    def open(self, key: str, *, etag: str | None = None, start: int = 0) -> Any:
        """A stream of the object from `start`."""
        if key not in self.objects or (etag and self.etag(key) != etag):
            raise ObjectGoneError(f"object {key} is gone or was replaced")
        self.opened.append((key, start))
        return io.BytesIO(self.objects[key][start:])

    def etag(self, key: str) -> str:
        """The object's ETag."""
        self.reads += 1
        if key not in self.objects:
            raise ObjectGoneError(f"object {key} is gone")
        return hashlib.md5(self.objects[key]).hexdigest()

    def get_json(self, key: str) -> Any | None:
        """The JSON under `key`, or None."""
        self.reads += 1
        data = self.objects.get(key)
        return None if data is None else json.loads(data)

    def put_json(self, key: str, value: Any) -> None:
        """Store `value` as JSON."""
        self.objects[key] = json.dumps(value).encode("utf-8")

    def list_keys(self, prefix: str, *, after: str | None, limit: int) -> tuple[list[str], bool]:
        """Up to `limit` keys under `prefix` after `after`, in key order; and whether more
        follow."""
        keys = sorted(
            k for k in self.objects if k.startswith(prefix) and (after is None or k > after)
        )
        return keys[:limit], len(keys) > limit

    def ping(self) -> None:
        """Always answers."""

    def upload_form(self, key: str, *, max_bytes: int, seconds: int) -> dict[str, Any]:
        """A form as S3's presigned POST looks (nothing checks it here)."""
        policy = json.dumps({"key": key, "max_bytes": max_bytes, "seconds": seconds})
        return {"url": "https://bucket.example/", "fields": {"key": key, "policy": policy}}


class InMemoryQueue:
    """A queue as a list of bodies."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send(self, bodies: Sequence[str]) -> None:
        """Append the bodies."""
        self.bodies.extend(bodies)

    def ping(self) -> None:
        """Always answers."""

    def take(self) -> list[str]:
        """Remove and return every body queued so far."""
        bodies, self.bodies = self.bodies, []
        return bodies


@dataclass(frozen=True)
class Delivery:
    """One call of RecordingNotifier.deliver."""

    target: Target
    body: bytes
    secret: str
    delivery_id: str
    event: str
    tenant: str = ""

    def json(self) -> Any:
        """The body, parsed."""
        return json.loads(self.body)


class RecordingNotifier:
    """The notifier fake: records every attempt; can be told to fail the next N of them."""

    def __init__(self) -> None:
        self.attempts: list[Delivery] = []  # every call, failed or not
        self.delivered: list[Delivery] = []  # the calls that succeeded
        self._failures: list[DeliveryError] = []

    def fail(self, times: int = 1, *, reason: str = "HTTP 500", retryable: bool = True) -> None:
        """Make the next `times` deliveries raise DeliveryError(reason, retryable=...)."""
        self._failures.extend(DeliveryError(reason, retryable=retryable) for _ in range(times))

    def deliver(
        self,
        target: Target,
        body: bytes,
        *,
        secret: str,
        delivery_id: str,
        event: str,
        tenant: str = "",
    ) -> None:
        """Record the delivery, or raise the next failure it was told to."""
        delivery = Delivery(target, body, secret, delivery_id, event, tenant)
        self.attempts.append(delivery)
        if self._failures:
            raise self._failures.pop(0)
        self.delivered.append(delivery)


def in_memory_repositories(readings: ReadingRepository | None = None) -> Repositories:
    """Fresh in-memory repositories (the reading fake also serves the rollup port)."""
    reading_repo = readings or InMemoryReadingRepository()
    return Repositories(
        readings=reading_repo,
        registry=InMemoryRegistryRepository(),
        keys=InMemoryKeyRepository(),
        rollups=reading_repo,  # type: ignore[arg-type]
    )


class InMemoryDelayQueue(InMemoryQueue):
    """The notify queue: bodies now, and bodies sent for later with their delays."""

    def __init__(self) -> None:
        super().__init__()
        self.later: list[tuple[str, int]] = []

    def send_later(self, body: str, delay_s: int) -> None:
        """Keep the body and its delay (a test delivers it when it likes)."""
        self.later.append((body, delay_s))

    def take_later(self) -> list[str]:
        """Remove and return every delayed body."""
        bodies, self.later = [b for b, _ in self.later], []
        return bodies


class InMemoryAlertRepository:
    """Alert rules, (rule, room) states and events in dicts, with the DynamoDB adapter's
    conditional transitions and listing order (tests/integration/test_alert_repository_contract)."""

    def __init__(self) -> None:
        self.rules: dict[tuple[str, str], AlertRule] = {}  # (tenant, rule_id)
        self.stored_states: dict[tuple[str, str, str, str], RoomState] = {}
        self.unsent: dict[tuple[str, str, str, str], int] = {}  # state -> when listed (ms)
        self.events: dict[tuple[str, str], AlertEvent] = {}  # (tenant, event_id)
        self.deliveries: dict[tuple[str, str], dict[str, AlertDelivery]] = {}
        self.calls: list[str] = []

    def create_rule(self, rule: Any) -> None:
        """Store a new rule."""
        self.calls.append("create_rule")
        self.rules[(rule.tenant, rule.rule_id)] = rule

    def get_rule(self, tenant: str, rule_id: str) -> Any:
        """The tenant's rule, or None."""
        self.calls.append("get_rule")
        return self.rules.get((tenant, rule_id))

    def save_rule(self, rule: Any) -> None:
        """Replace the rule."""
        self.rules[(rule.tenant, rule.rule_id)] = rule

    def delete_rule(self, rule: Any, now_ms: int) -> None:
        """Forget the rule and its states; close its active events."""
        self.reset_states(rule, now_ms, CLOSED_BY_RULE_DELETE)
        self.rules.pop((rule.tenant, rule.rule_id), None)

    def reset_states(self, rule: Any, now_ms: int, reason: str) -> None:
        """Forget the rule's states; close its active events."""
        for key in [k for k in self.stored_states if k[0] == rule.tenant and k[2] == rule.rule_id]:
            state = self.stored_states.pop(key)
            self.unsent.pop(key, None)
            event = self.events.get((rule.tenant, state.event_id or ""))
            if state.active and event is not None and event.state is AlertState.ACTIVE:
                self.events[(rule.tenant, event.event_id)] = event.model_copy(
                    update={"state": AlertState.CLEARED, "cleared_ms": now_ms, "cleared_by": reason}
                )

    def rules_of_building(self, tenant: str, building: str) -> list[Any]:
        """The building's rules (one read)."""
        self.calls.append("rules_of_building")
        return [r for (t, _), r in self.rules.items() if t == tenant and r.building == building]

    def silent_rules(self) -> list[Any]:
        """Every tenant's silent rules."""
        self.calls.append("silent_rules")
        return [r for r in self.rules.values() if r.condition.value == "silent"]

    def states(
        self, tenant: str, building: str, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], Any]:
        """The stored states of the pairs."""
        self.calls.append("states")
        found = {}
        for rule_id, room in pairs:
            stored = self.stored_states.get((tenant, building, rule_id, room))
            if stored is not None:
                found[(rule_id, room)] = stored
        return found

    def transition(self, tenant: str, building: str, before: Any, after: Any, event: Any) -> bool:
        """Every write, or none when the stored state moved on or the rule is gone."""
        self.calls.append("transition")
        key = (tenant, building, after.rule_id, after.room)
        stored = self.stored_states.get(key)
        if (stored.transitions if stored else 0) != before.transitions:
            return False
        rule = self.rules.get((tenant, after.rule_id))
        if rule is None or rule.building != building:
            return False
        if event.state is AlertState.ACTIVE and (tenant, event.event_id) in self.events:
            return False
        if event.state is AlertState.CLEARED:
            if (tenant, event.event_id) not in self.events:
                return False
            opened = self.events[(tenant, event.event_id)]
            event = opened.model_copy(
                update={
                    "state": event.state,
                    "cleared_ms": event.cleared_ms,
                    "cleared_value": event.cleared_value,
                }
            )
        self.stored_states[key] = after
        if after.enqueued < after.transitions:
            self.unsent[key] = now_ms()
        self.events[(tenant, event.event_id)] = event.model_copy(update={"deliveries": ()})
        return True

    def mark_evaluated(self, tenant: str, building: str, states: Sequence[Any]) -> None:
        """Raise the high-water marks."""
        self.calls.append("mark_evaluated")
        for state in states:
            key = (tenant, building, state.rule_id, state.room)
            stored = self.stored_states.get(key) or RoomState(
                rule_id=state.rule_id, room=state.room
            )
            if stored.evaluated_ms < state.evaluated_ms:
                self.stored_states[key] = stored.model_copy(
                    update={"evaluated_ms": state.evaluated_ms}
                )

    def mark_enqueued(self, tenant: str, building: str, state: Any) -> None:
        """Raise the enqueued mark."""
        self.calls.append("mark_enqueued")
        key = (tenant, building, state.rule_id, state.room)
        stored = self.stored_states.get(key)
        if stored is not None and stored.enqueued < state.enqueued:
            self.stored_states[key] = stored.model_copy(update={"enqueued": state.enqueued})
            if stored.transitions == state.enqueued:
                self.unsent.pop(key, None)

    def unsent_states(self, before_ms: int) -> list[tuple[Any, Any]]:
        """States listed as not enqueued before `before_ms`, with their rules."""
        self.calls.append("unsent_states")
        found = []
        for key, listed in sorted(self.unsent.items(), key=lambda kv: kv[1]):
            rule = self.rules.get((key[0], key[2]))
            if listed < before_ms and rule is not None:
                found.append((rule, self.stored_states[key]))
        return found

    def get_event(self, tenant: str, building: str, event_id: str) -> Any:
        """One event with its deliveries."""
        event = self.events.get((tenant, event_id))
        if event is None or event.building != building:
            return None
        recorded = self.deliveries.get((tenant, event_id), {})
        ordered = tuple(recorded[k] for k in sorted(recorded))
        return event.model_copy(update={"deliveries": ordered})

    def record_delivery(
        self, tenant: str, building: str, event_id: str, index: int, delivery: Any
    ) -> None:
        """Keep one delivery's outcome."""
        if (tenant, event_id) in self.events:
            recorded = self.deliveries.setdefault((tenant, event_id), {})
            recorded[f"{delivery.delivery_id}#{index:02d}"] = delivery

    def list_events(
        self,
        tenant: str,
        states: Sequence[str],
        buildings: Sequence[str] | None,
        room: str | None,
        limit: int,
        after: str | None,
    ) -> tuple[list[Any], str | None]:
        """Ordered as the DynamoDB adapter's index: state, building, room, fired time."""
        found = []
        for (t, event_id), event in self.events.items():
            if t != tenant or event.state.value not in states:
                continue
            if buildings is not None and event.building not in buildings:
                continue
            if room is not None and event.room != room:
                continue
            position = "#".join(
                (event.state.value, event.building, event.room, format_ms(event.fired_ms), event_id)
            )
            found.append((states.index(event.state.value), position, event))
        found.sort(key=lambda f: (f[0], f[1]))
        if after is not None:
            found = [f for f in found if f[1] > after]
        page = found[:limit]
        events = [self.get_event(tenant, e.building, e.event_id) for _, _, e in page]
        return events, (page[-1][1] if len(found) > limit else None)

    def delete_for_room(self, tenant: str, building: str, room: str) -> int:
        """Forget the room's rules, its states of every rule and its events."""
        doomed = 0
        for key in [
            k
            for k, r in self.rules.items()
            if k[0] == tenant and r.building == building and r.room == room
        ]:
            del self.rules[key]
            doomed += 2  # the rule and its pointer
        mine = (tenant, building, room)
        for place in [k for k in self.stored_states if (k[0], k[1], k[3]) == mine]:
            del self.stored_states[place]
            self.unsent.pop(place, None)
            doomed += 1
        gone = [
            k
            for k, e in self.events.items()
            if k[0] == tenant and e.building == building and e.room == room
        ]
        for event in gone:
            del self.events[event]
            self.deliveries.pop(event, None)
            doomed += 1
        return doomed

    def delete_for_building(self, tenant: str, building: str) -> int:
        """Forget everything of the building."""
        doomed = 0
        for key in [k for k, r in self.rules.items() if k[0] == tenant and r.building == building]:
            del self.rules[key]
            doomed += 1
        for place in [k for k in self.stored_states if k[:2] == (tenant, building)]:
            del self.stored_states[place]
            self.unsent.pop(place, None)
            doomed += 1
        gone = [k for k, e in self.events.items() if k[0] == tenant and e.building == building]
        for event in gone:
            del self.events[event]
            self.deliveries.pop(event, None)
            doomed += 1
        return doomed


def in_memory_adapters() -> dict[str, Any]:
    """Every storage adapter in memory, as `wiring.override(**in_memory_adapters())` takes them:
    the whole app, /health included, without AWS."""
    return {
        "repositories": in_memory_repositories(),
        "report_repository": InMemoryReportRepository(),
        "alert_repository": InMemoryAlertRepository(),
        "object_store": InMemoryObjectStore(),
        "ingest_queue": InMemoryQueue(),
        "reports_queue": InMemoryQueue(),
        "notify_queue": InMemoryDelayQueue(),
    }
