"""The ports the services need. Adapters: chalicelib/aws/; fakes: tests/fakes.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from chalicelib.domain.access import ApiKey
from chalicelib.domain.alerts import AlertEvent, AlertRule, Delivery, RoomState
from chalicelib.domain.models import Metric, Position, Reading, WriteResult
from chalicelib.domain.notify import Target
from chalicelib.domain.registry import Building, Page, Room, Sensor, Tenant
from chalicelib.domain.reports import Report
from chalicelib.domain.rollups import Resolution, Rollup

R = TypeVar("R")


class ReadingRepository(Protocol):
    """Stores readings once each and reads them back by room and time."""

    def put_readings(self, readings: Sequence[Reading]) -> WriteResult:
        """Store readings whose (building, room, sensor, ts) is new; count the rest as duplicates.

        The first value stored wins under any interleaving of writers; a duplicate is counted,
        never written again. Only readings are written: their rollups follow from the table's
        stream (RollupRepository.refresh).
        """
        ...

    def window(
        self,
        tenant: str,
        building: str,
        room: str,
        after_ms: int,
        until_ms: int,
        metric: Metric | None = None,
    ) -> list[Reading]:
        """The room's readings with after_ms < ts <= until_ms, in time order; with `metric`,
        only that metric's value is read (the others come back None)."""
        ...

    def latest(self, tenant: str, building: str, room: str) -> Reading | None:
        """The room's most recent reading, or None."""
        ...

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
        """Up to `limit` readings of [from_ms, to_ms) after `after`, and whether more follow."""
        ...

    def has_readings(self, tenant: str, building: str, room: str) -> bool:
        """Whether the room holds any reading."""
        ...

    def delete_room_data(self, tenant: str, building: str, room: str) -> int:
        """Delete every item of the room's partition (readings and their aggregates); count them."""
        ...

    def ping(self) -> None:
        """Raise StorageUnavailableError unless the store answers."""
        ...


class RegistryRepository(Protocol):
    """Tenants, buildings, rooms and sensors. `create_*` return False when the id is taken.
    Buildings, rooms and sensors are each tenant's own: ids are unique within a tenant."""

    def create_tenant(self, tenant: Tenant) -> bool: ...
    def get_tenant(self, tenant: str) -> Tenant | None: ...
    def save_tenant(self, tenant: Tenant) -> None: ...
    def list_tenants(self, limit: int, after: str | None) -> Page: ...

    def create_building(self, building: Building) -> bool: ...
    def get_building(self, tenant: str, building: str) -> Building | None: ...
    def save_building(self, building: Building) -> None: ...
    def delete_building(self, tenant: str, building: str) -> None: ...
    def list_buildings(self, tenant: str, limit: int, after: str | None) -> Page: ...

    def create_room(self, room: Room) -> bool: ...
    def get_room(self, tenant: str, building: str, room: str) -> Room | None: ...
    def existing_rooms(
        self, tenant: str, places: Sequence[tuple[str, str]]
    ) -> set[tuple[str, str]]: ...
    def save_room(self, room: Room) -> None: ...
    def delete_room(self, tenant: str, building: str, room: str) -> None: ...
    def list_rooms(self, tenant: str, building: str, limit: int, after: str | None) -> Page: ...

    def create_sensor(self, sensor: Sensor) -> bool: ...
    def get_sensor(self, tenant: str, sensor_id: str) -> Sensor | None: ...
    def save_sensor(self, sensor: Sensor) -> None: ...
    def delete_sensor(self, tenant: str, sensor_id: str) -> None: ...
    def list_sensors(self, tenant: str, limit: int, after: str | None) -> Page: ...


class KeyRepository(Protocol):
    """API keys by id; listed per tenant (None: operator keys)."""

    def create_key(self, key: ApiKey) -> None: ...
    def get_key(self, key_id: str) -> ApiKey | None: ...
    def save_key(self, key: ApiKey) -> None: ...
    def list_keys(self, tenant: str | None, limit: int, after: str | None) -> Page: ...


class RollupRepository(Protocol):
    """Per-room minute and hour rollups, kept by the stream consumer (`refresh`), plus raw reads."""

    def rollups(
        self,
        tenant: str,
        building: str,
        room: str,
        resolution: Resolution,
        from_ms: int,
        to_ms: int,
    ) -> list[tuple[int, Rollup]]:
        """The stored rollups of `resolution` starting in [from_ms, to_ms), in time order."""
        ...

    def window(
        self,
        tenant: str,
        building: str,
        room: str,
        after_ms: int,
        until_ms: int,
        metric: Metric | None = None,
    ) -> list[Reading]:
        """The room's readings with after_ms < ts <= until_ms, in time order."""
        ...

    def rooms_of(self, tenant: str, building: str) -> list[str]:
        """The building's rooms, sorted."""
        ...

    def refresh(self, readings: Sequence[Reading], *, as_of_ms: int) -> int:
        """Recompute the rollups of every minute and hour the readings fall in, from what is
        stored; note that the rooms' rollups hold every reading written until `as_of_ms`.
        Idempotent. The number of rollup items written."""
        ...

    def freshness(self, tenant: str, building: str, room: str) -> int | None:
        """Until when (epoch ms of a write) the room's rollups hold every reading written;
        None before its first refresh."""
        ...


@dataclass(frozen=True)
class Repositories:
    """The repositories a request may need, built once per process by wiring."""

    readings: ReadingRepository
    registry: RegistryRepository
    keys: KeyRepository
    rollups: RollupRepository  # the rollup side of `readings` (one adapter implements both)


class ReportRepository(Protocol):
    """Report requests, their status and their results (JSON and CSV)."""

    def create(self, report: Report) -> bool:
        """Store a new pending report; False (and nothing changes) if its id exists."""
        ...

    def get(self, report_id: str) -> Report | None:
        """The report's status item, or None."""
        ...

    def mark_running(self, report_id: str, started_ms: int) -> None:
        """Record that work on the report (re)started."""
        ...

    def release(self, report_id: str) -> None:
        """Back to pending (a run gave up on a busy table; the queue will redeliver)."""
        ...

    def complete(
        self,
        report_id: str,
        finished_ms: int,
        result: dict[str, Any],
        csv: str,
        summary: dict[str, Any],
    ) -> None:
        """Store the result and its CSV copy, then mark the report completed (with its summary
        and the result's size)."""
        ...

    def fail(self, report_id: str, finished_ms: int, message: str) -> None:
        """Mark the report failed with a reason."""
        ...

    def result(self, report_id: str) -> dict[str, Any] | None:
        """The stored result of a completed report."""
        ...

    def csv_link(self, report_id: str) -> str:
        """A link to the report's CSV copy (a presigned URL on AWS)."""
        ...

    def result_link(self, report_id: str) -> str:
        """A link to the report's JSON result (a presigned URL on AWS)."""
        ...

    def delete_for_building(self, tenant: str, building: str) -> int:
        """Delete every report of the tenant's building (status, result, CSV); how many."""
        ...


class ObjectGoneError(Exception):
    """The object is missing, or was replaced since the event that named it (ETag differs)."""


class ObjectStore(Protocol):
    """One bucket: stream objects in, write JSON reports out."""

    def open(self, key: str, *, etag: str | None = None, start: int = 0) -> Any:
        """A read()-able stream of the object from byte `start`; ObjectGoneError if gone/changed."""
        ...

    def etag(self, key: str) -> str:
        """The object's current ETag (without quotes); ObjectGoneError if missing."""
        ...

    def get_json(self, key: str) -> Any | None:
        """The JSON stored under `key`, or None."""
        ...

    def put_json(self, key: str, value: Any) -> None:
        """Store `value` as JSON under `key`."""
        ...


class UploadStore(ObjectStore, Protocol):
    """The bucket as imports through the API use it: tickets listed, upload forms signed."""

    def list_keys(self, prefix: str, *, after: str | None, limit: int) -> tuple[list[str], bool]:
        """Up to `limit` keys under `prefix` after `after`, in key order; and whether more
        follow."""
        ...

    def upload_form(self, key: str, *, max_bytes: int, seconds: int) -> dict[str, Any]:
        """A presigned POST of `key` ({"url", "fields"}): files up to `max_bytes`, for `seconds`
        (signed locally: no call)."""
        ...

    def ping(self) -> None:
        """StorageUnavailableError unless the bucket answers (GET /health)."""
        ...

    def stored_ms(self, key: str) -> int:
        """When the object was last written (epoch ms); ObjectGoneError if missing."""
        ...

    def each(self, work: Callable[[str], R], keys: Sequence[str]) -> Iterator[R]:
        """`work` over `keys` in order: a few at a time under the caller's budget (round trips
        overlap); the first error is raised."""
        ...


class MessageQueue(Protocol):
    """A queue that takes JSON message bodies."""

    def send(self, bodies: Sequence[str]) -> None:
        """Enqueue every body (in batches the service allows); raise if any cannot be sent."""
        ...

    def ping(self) -> None:
        """StorageUnavailableError unless the queue answers (GET /health)."""
        ...


@dataclass(frozen=True, slots=True)
class Begun:
    """What IdempotencyStore.begin found: a new attempt ("new", or "resume" after one that
    failed: run it at `now_ms`), the kept answer ("done"), another attempt running ("busy"),
    or the key used for another request ("mismatch")."""

    state: str
    now_ms: int
    status: int | None = None
    body: str | None = None


class IdempotencyStore(Protocol):
    """Attempts of requests sent with an Idempotency-Key, and their answers (kept a day)."""

    def begin(self, scope: str, key: str, request: str, now_ms: int, lease_ms: int) -> Begun:
        """Start an attempt of `request` (a fingerprint) under `key`, unless one holds it."""
        ...

    def finish(self, scope: str, key: str, status: int, body: str) -> None:
        """Keep the attempt's answer (status and JSON body) for its retries."""
        ...

    def release(self, scope: str, key: str) -> None:
        """The attempt failed: the next one runs again, at this attempt's time."""
        ...


class Notifier(Protocol):
    """Delivers one alert notification to a webhook or SNS topic, or raises DeliveryError."""

    def deliver(
        self,
        target: Target,
        body: bytes,
        *,
        secret: str,
        delivery_id: str,
        event: str,
        tenant: str = "",
    ) -> None: ...


class DelayQueue(Protocol):
    """A queue that also takes a message to deliver later (the notify queue's retries)."""

    def send(self, bodies: Sequence[str]) -> None:
        """Enqueue every body now."""
        ...

    def send_later(self, body: str, delay_s: int) -> None:
        """Enqueue one body, visible after `delay_s` seconds (at most 900)."""
        ...

    def ping(self) -> None:
        """StorageUnavailableError unless the queue answers (GET /health)."""
        ...


class AlertRepository(Protocol):
    """Alert rules, each (rule, room)'s state and the alert events, per tenant's building."""

    def create_rule(self, rule: AlertRule) -> None:
        """Store a new rule and its by-id pointer together."""
        ...

    def get_rule(self, tenant: str, rule_id: str) -> AlertRule | None:
        """The tenant's rule of that id (through its pointer), or None."""
        ...

    def save_rule(self, rule: AlertRule) -> None:
        """Replace a rule (its building, room and id never change)."""
        ...

    def delete_rule(self, rule: AlertRule, now_ms: int) -> None:
        """Delete a rule, its pointer and its states; its active events are closed at now_ms."""
        ...

    def rules_of_building(self, tenant: str, building: str) -> list[AlertRule]:
        """Every rule of the building (room rules and building-wide ones): one read."""
        ...

    def silent_rules(self) -> list[AlertRule]:
        """Every tenant's silent rules, in a few reads whatever the number of tenants."""
        ...

    def reset_states(self, rule: AlertRule, now_ms: int, reason: str) -> None:
        """Delete the rule's states; its active events are closed at now_ms (`cleared_by`)."""
        ...

    def states(
        self, tenant: str, building: str, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], RoomState]:
        """The stored states of these (rule_id, room) pairs (absent: never transitioned)."""
        ...

    def transition(
        self, tenant: str, building: str, before: RoomState, after: RoomState, event: AlertEvent
    ) -> bool:
        """Move a (rule, room) from `before` to `after` and store `event` (opened or closed) in
        one conditional write; False (nothing written) when the state is no longer `before` or
        the rule no longer exists."""
        ...

    def mark_enqueued(self, tenant: str, building: str, state: RoomState) -> None:
        """Note that the notification of the state's last transition is on the queue."""
        ...

    def mark_evaluated(self, tenant: str, building: str, states: Sequence[RoomState]) -> None:
        """Raise these states' high-water marks (`evaluated_ms`; never lowered)."""
        ...

    def unsent_states(self, before_ms: int) -> list[tuple[AlertRule, RoomState]]:
        """Every tenant's states whose last transition (written before `before_ms`) is not yet
        on the notify queue, with their rules."""
        ...

    def get_event(self, tenant: str, building: str, event_id: str) -> AlertEvent | None:
        """One event of the building, or None."""
        ...

    def record_delivery(
        self, tenant: str, building: str, event_id: str, index: int, delivery: Delivery
    ) -> None:
        """Keep how the delivery to the rule's `index`th target went (on the event)."""
        ...

    def list_events(
        self,
        tenant: str,
        states: Sequence[str],
        buildings: Sequence[str] | None,
        room: str | None,
        limit: int,
        after: str | None,
    ) -> tuple[list[AlertEvent], str | None]:
        """Events of the tenant by state (in the given order), building (of `buildings`; None:
        all) and room; up to `limit` after the position `after`, and the position of the last
        one if more follow."""
        ...

    def delete_for_room(self, tenant: str, building: str, room: str) -> int:
        """Delete the room's rules, every state of the room and its events; how many items."""
        ...

    def delete_for_building(self, tenant: str, building: str) -> int:
        """Delete every rule (and pointer), state and event of the building; how many items."""
        ...
